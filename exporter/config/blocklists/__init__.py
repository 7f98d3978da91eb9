"""Known censorship fingerprints, shipped as the defaults of `blockpage_addresses`
(`addresses`: OONI's DNS fingerprints) and of `blockpage_patterns` and `blockpage_headers`
(`pages`: its HTTP fingerprints); see docs/configuration.md. Pure data: no I/O.

Every entry names its public source. Most come from OONI's blocking-fingerprints repository
(github.com/ooni/blocking-fingerprints, files fingerprints_dns.csv and fingerprints_http.csv,
commit 171641e60b54231cad18753a72145da87b0d3e07 of 2024-10-20), which merges OONI's own
fingerprints (`ooni.*`), Citizen Lab's filtering-annotations (`cl.*`) and Censored Planet's
(`cp.*`). The id in each comment is that file's `name` column, with the row's `other_names` in
parentheses; addresses cite fingerprints_dns.csv, patterns and headers fingerprints_http.csv.

The selection is conservative, because a false match turns a working service into "blocked":
- countries: those that block messengers or whole platforms (Russia, Belarus, Iran, Turkey,
  China, Myanmar, Pakistan, India, Nepal, Thailand, Vietnam, Indonesia, South Korea,
  Uzbekistan, Saudi Arabia, the UAE, Bahrain, Kuwait, Oman, Qatar, Sudan, Yemen);
- scope: national filters, and ISPs' pages and sinkholes when the ISP enforces the national
  register (Russia's Roskomnadzor register, Indonesia's TrustPositif, ...), whatever the
  ISP's size; never opt-in "family" or parental filters, commercial filtering products
  (unless the row shows the product serving as the national filter), schools, companies,
  ISP billing or quota notices, nor the content providers' own geoblocks;
- addresses: no address of a cloud or anycast host (easily reassigned, and some messengers
  run on the same clouds), no answer OONI only saw time out, no private address unless it
  documents a national injection (private addresses are caught by the bogon rule anyway);
- patterns: an ASCII-only, blockpage-specific token (a host name, an iframe target, a fixed
  sentence), never a generic word like "blocked", an ISP's home page, its support e-mail or
  an analytics id (ISPs share those with their own sites). ASCII tokens match whatever the
  page's encoding (many Russian blockpages are windows-1251); the few Turkish court-order
  sentences are UTF-8, as those pages are.

How OONI's `pattern_type` is translated (its matching is literal, so tokens are escaped with
`re.escape` semantics): `contains` becomes an unanchored search; a host name only counts
inside a URL (after `//`), so prose that names the censor's host does not match. `prefix` and
`full` rows of the Location header are anchored (`^`, and `\\Z` for `full`) when the token is
an address or a shared host; a host name that only ever serves the blockpage is matched
wherever a URL names it, since the same page also arrives as an iframe or a meta refresh. An
address is followed by `\\b`, so 10.1.1.2 never matches 10.1.1.23. Host names are matched
case-insensitively. The one `regexp` row taken is kept as it is.

Patterns are Python regular expressions matched (`search`) on the raw bytes of the start of the
body and on the `Location` header; the loader compiles them as bytes (`re.compile(p.encode())`),
so `(?i)` folds ASCII letters only. Header patterns are compiled the same way and searched in
the value of the named header (never Location, which the patterns above cover). Addresses are
in normal form (as `str(ip_address(...))` prints them), the form DNS answers are compared in.

Not covered, on purpose:
- Iraq, Jordan, Ethiopia, Kazakhstan, Tajikistan, Turkmenistan, Venezuela and Cuba: the CSVs
  hold no national fingerprint for them (Iraq's blocks are by address and by shutdown, which
  the verdict rules judge without fingerprints);
- China's current DNS injection, which answers from large, changing pools of real foreign
  addresses (the addresses below are its long-documented historic answers; rules 5 and 6 of
  docs/verdicts.md catch the rest), and its ICP-filing and anti-fraud pages (not about
  messengers, and only in Chinese);
- DNS rows: CNAME targets (the list holds addresses); AWS Global Accelerator addresses
  (ooni.id_dns_124/125, ooni.sg_dns_*: WhatsApp runs on the same anycast pool) and Myanmar's
  ministry page on DigitalOcean (ooni.mm_3; its page is matched by its sentence below);
  answers that only timed out (ooni.ru_dns_3..5, ooni.id_dns_111/118/123, ooni.in_dns_6..15,
  ooni.th_10, ooni.vn_dns_1) or are private and unconfirmed (ooni.mm_5, ooni.id_dns_112);
  opt-in and product filters (Turk Net ooni.tr_7..14, Nayatel ooni.pk_3/4, Nawala ooni.id_39,
  SkyDNS, NetPolice and Yandex ooni.ru_83..87, AdGuard, OpenDNS, CleanBrowsing, ...);
  hotel and university filters (ooni.id_80..82, ooni.id_94); generic answers (0.0.0.0,
  127.0.0.1, 1.2.3.4); countries that do not block messengers (copyright and gambling blocks
  in Europe, Australia, Canada, Singapore, the Philippines, Malaysia, Mongolia, Cambodia);
- HTTP rows: non-ASCII-only sentences (most Russian generic pages, Thai, Arabic and Korean ones,
  ooni.ru_0/1/4, cl.nat_sa, ooni.th_ministry_0/2/3); base64 bodies (ooni.ru_35/37, ooni.th_5);
  analytics ids (UA-*, GTM-*, Yandex Metrika); ISPs' home pages, help pages and e-mails
  (cp.c_isp_ru_teleseti, cp.c_isp_ru_divo_2, cp.c_isp_ru_telemagadan, ooni.ru_41,
  cl.isp_by_mts_block, ooni.id_kominfo); links to law texts that legal footers also carry
  (cp.b_nat_ru_body: graph.document.kremlin.ru); generic titles and words (ooni.in_0,
  ooni.ru_38/39, cl.vbw_*, cp.f_gen_*, cp.e_unk_tr_legal_warning "YASAL UYARI",
  cl.nat_id_trustpositif_block_6, ooni.th_mdes "mdes.jpg"); a bare 404 page (ooni.vn_http_1,
  close to the known false positive cp.fp_x_generic_404_2); opt-in filters (Turk Telekom
  ooni.tr_3/5, SK Telecom and LG U+ ooni.kr_3..6, Nayatel ooni.pk_2, MGTS ooni.ru_20); billing
  notices (ooni.ru_79, ooni.th_8); VK's own geoblock (ooni.by_3,
  cl.prov_vkontakte_rkn_geoblock); Etisalat Misr's notification redirect (ooni.eg_0: it may be
  an operator's notice, such as a billing one, rather than a block); commercial products and
  corporate pages (Blue Coat ooni.ae_1/ooni.sa_0, Etisalat's corporate Websense ooni.ae_3,
  Viettel's WAF cp.c_isp_viettel, Huawei ooni.es_1, cp.a_prod_*, cp.d_corp_*); rows whose
  attribution OONI doubts (cl.isp_ru_formulasvyaz_forward, cl.isp_ru_ufanet_forward_ipvariant,
  ooni.ru_81), that Censored Planet lists as false positives (cl.isp_ru_tscrimea_forward) or
  that are garbled (cp.c_isp_ru_sibitex)."""
