"""Known censorship fingerprints, shipped as the defaults of `blockpage_addresses`,
`blockpage_patterns` and `blockpage_headers` (see docs/configuration.md). Pure data: no I/O.

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

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

DEFAULT_BLOCKPAGE_ADDRESSES: Final[frozenset[str]] = frozenset(
    {
        # ---- Iran: the national filter's DNS injection, pointing at the peyvandha blockpage
        "10.10.34.34",  # ooni.ir_4 (cl.dns_nat_ir_inject_1)
        "10.10.34.35",  # ooni.ir_5 (cl.dns_nat_ir_inject_2)
        "10.10.34.36",  # ooni.ir_10dot10_ipv4_1
        "d0::11",  # ooni.ir_ipv6_1: the IPv6 variant of the injected blockpage address
        # ---- Turkey
        "195.175.254.2",  # ooni.tr_6 (cl.dns_nat_tr_poison): national poisoned reply since 2014
        # ---- Russia: ISP sinkholes for names on the Roskomnadzor register
        "5.3.3.17",  # ooni.ru_96 (cl.dns_isp_ru_rkn_ertelecom): ER-Telecom (Dom.ru)
        "188.186.146.207",  # ooni.ru_dns_ert_3: ER-Telecom
        "188.186.146.208",  # ooni.ru_dns_ert_1: ER-Telecom
        "188.186.154.79",  # ooni.ru_dns_ert_2: ER-Telecom
        "188.186.154.88",  # ooni.ru_dns_ert_4: ER-Telecom
        "95.167.13.50",  # ooni.ru_dns_1: Rostelecom
        "95.167.13.51",  # ooni.ru_dns_2: Rostelecom
        "217.148.54.171",  # ooni.ru_88 (cl.dns_isp_rostelecom_blocksystem): Rostelecom network
        "62.33.207.196",  # ooni.ru_97: national scope, no notes
        "62.33.207.197",  # ooni.ru_98: national scope, no notes
        "212.1.226.59",  # ooni.ru_93 (cl.dns_isp_ru_rkn_netbynet): NetByNet
        # ooni.ru_90 (cl.dns_isp_ru_rkn_naukanet, cl.dns_isp_ru_rkn_zencom, ooni.ru_91)
        "46.175.31.250",  # ooni.ru_90: Nauka-Svyaz, Zencom
        "185.37.129.10",  # ooni.ru_89 (cl.dns_isp_ru_rkn_skynet): SkyNet
        "87.241.223.133",  # ooni.ru_95 (cl.dns_isp_ru_rkn_enforta): Enforta
        "37.44.40.254",  # ooni.ru_94 (cl.dns_isp_ru_rkn_smoltelecom): Smoltelecom
        "83.69.208.124",  # ooni.ru_92 (cl.dns_isp_ru_rkn_mastertel): Mastertel
        "81.200.2.238",  # ooni.ru_dns_sevensky_1: Seven Sky
        "171.25.175.70",  # ooni.ru_dns_trk_1
        "195.128.72.3",  # ooni.ru_dns_macomnet_1: Macomnet
        # ---- Belarus
        "134.17.0.7",  # ooni.by_4 (cl.dns_isp_by_mts): MTS Belarus
        # ---- Myanmar
        "103.105.174.6",  # ooni.mm_6: the government blockpage
        "59.153.90.11",  # ooni.mm_2 (cl.dns_isp_mm_myanmarnet_block): MyanmarNet
        # ---- Thailand, Vietnam
        "125.26.170.3",  # ooni.th_9 (cl.dns_nat_th_mdes_illegal): Ministry of Digital Economy
        "103.192.236.94",  # ooni.vn_dns_2: government
        # ---- India: the Department of Telecommunications' blockpages, served by the ISPs
        "103.59.214.106",  # ooni.in_dns_1
        "49.205.171.201",  # ooni.in_dns_2
        "202.83.21.14",  # ooni.in_dns_3
        "49.207.46.62",  # ooni.in_dns_4
        "103.206.163.150",  # ooni.in_dns_5
        "202.164.51.25",  # ooni.in_dns_16
        "123.176.40.68",  # ooni.in_dns_17
        "106.51.113.17",  # ooni.in_dns_18
        "123.176.40.69",  # ooni.in_dns_19
        "49.207.46.38",  # ooni.in_dns_20
        "123.176.40.67",  # ooni.in_dns_21
        "49.205.75.6",  # ooni.in_dns_22
        # ---- Indonesia: the national TrustPositif blockpages (Kominfo)
        "101.255.1.226",  # ooni.id_internet_positif_remala_1
        "101.255.0.226",  # ooni.id_internet_positif_remala_2
        "139.255.196.196",  # ooni.id_kominfo_1
        "103.154.123.132",  # ooni.id_kominfo_2
        "103.88.170.170",  # ooni.id_dns_110
        "27.54.116.70",  # ooni.id_dns_113
        "103.94.168.168",  # ooni.id_dns_114
        "115.178.182.58",  # ooni.id_dns_115
        "202.62.8.233",  # ooni.id_dns_116
        "202.3.218.137",  # ooni.id_dns_117
        "119.18.152.218",  # ooni.id_dns_119
        "110.50.83.31",  # ooni.id_dns_120: MNC Play's, per ooni.id_93
        "103.170.115.114",  # ooni.id_dns_121
        "202.137.1.74",  # ooni.id_dns_122: First Media's, per ooni.id_72
        "202.89.117.64",  # ooni.id_dns_126
        "103.189.63.245",  # ooni.id_dns_127
        # ---- Indonesia: ISP blockpages of the mandated "Internet Sehat" filtering
        "202.3.219.209",  # ooni.id_40 (cl.dns_isp_id_sehat_telkomsel_baik), ooni.id_dns_106
        "114.121.254.4",  # ooni.id_46 (cl.dns_isp_id_sehat_telkom_bltsel_ip): Telkomsel
        "36.86.63.185",  # ooni.id_43 (cl.dns_isp_id_sehat_telkom_uzone), ooni.id_dns_100
        "118.97.116.27",  # ooni.id_dns_104: Telkom Uzone (per ooni.id_44)
        "116.206.10.31",  # ooni.id_42 (cl.dns_isp_id_sehat_tri_ip): Tri
        "180.214.232.61",  # ooni.id_47 (cl.dns_isp_id_sehat_tri_blockpage), ooni.id_dns_105
        "114.6.128.8",  # ooni.id_69 (cl.dns_isp_id_sehat_netsafeindosat_2): Indosat
        "202.62.29.1",  # ooni.id_48 (cl.dns_isp_id_sehat_bolt_block), ooni.id_dns_107: Bolt
        "103.47.132.195",  # ooni.id_49 (cl.dns_isp_id_sehat_myrepublic_block): MyRepublic
        "158.140.186.3",  # ooni.id_71 (cl.dns_isp_id_sehat_myrepublic): MyRepublic
        "202.73.99.3",  # ooni.id_89 (cl.dns_isp_id_sehat_first), ooni.id_dns_108: First Media
        "202.169.44.80",  # ooni.id_77 (cl.dns_isp_id_sehat_biznet): Biznet
        "202.152.4.67",  # ooni.id_75 (cl.dns_isp_id_sehat_lintasarta): Lintasarta
        "202.65.113.54",  # ooni.id_56 (cl.dns_isp_id_sehat_citra): Citranet
        "114.129.22.33",  # ooni.id_66 (cl.dns_isp_id_sehat_hypernet_1): Hypernet
        "114.129.23.9",  # ooni.id_67 (cl.dns_isp_id_sehat_hypernet_2): Hypernet
        "49.128.177.13",  # ooni.id_91 (cl.dns_isp_id_sehat_gmedia_ip): GMedia
        "203.119.13.75",  # ooni.id_83 (cl.dns_isp_id_sehat_idnic_1): IDNIC
        "203.119.13.76",  # ooni.id_84 (cl.dns_isp_id_sehat_idnic_2): IDNIC
        "202.52.141.98",  # ooni.id_52 (cl.dns_isp_id_sehat_crypto_negatif): Crypto
        "150.107.140.200",  # ooni.id_53 (cl.dns_isp_id_sehat_jlm_negatif): JLM
        "103.14.16.18",  # ooni.id_54 (cl.dns_isp_id_sehat_starnet_light): Starnet
        "113.197.108.236",  # ooni.id_55 (cl.dns_isp_id_sehat_starnet_dark): Starnet
        "103.195.19.54",  # ooni.id_57 (cl.dns_isp_id_sehat_argon): Argon
        "103.10.120.3",  # ooni.id_58 (cl.dns_isp_id_sehat_sumberdata): Sumber Data
        "27.123.220.197",  # ooni.id_59 (cl.dns_isp_id_sehat_fibernet): Fibernet
        "103.108.159.238",  # ooni.id_60 (cl.dns_isp_id_sehat_gooptix): Go-Optix
        "103.126.10.252",  # ooni.id_61 (cl.dns_isp_id_sehat_ltn): Lintas Telematika Nusantara
        "103.142.60.250",  # ooni.id_62 (cl.dns_isp_id_sehat_utaramedia): Utara Internet
        "103.19.56.2",  # ooni.id_63 (cl.dns_isp_id_sehat_bitsnet): Bitsnet
        "103.70.68.68",  # ooni.id_64 (cl.dns_isp_id_sehat_winetmedia): Winnet Media
        "103.83.96.242",  # ooni.id_65 (cl.dns_isp_id_sehat_foxlinemedia): Foxline Media
        "150.107.151.151",  # ooni.id_70 (cl.dns_isp_id_sehat_nusanet): Nusa Net
        "202.165.36.253",  # ooni.id_76 (cl.dns_isp_id_sehat_circleone): Circle One
        "202.50.202.50",  # ooni.id_78 (cl.dns_isp_id_sehat_starcom): Starcom
        "203.160.56.38",  # ooni.id_85 (cl.dns_isp_id_sehat_hanastar): Hanastar
        "220.247.168.195",  # ooni.id_86 (cl.dns_isp_id_comnets): Icon Comnets+
        "58.147.184.141",  # ooni.id_87 (cl.dns_isp_id_sehat_transhybrid_1): Trans Hybrid
        "58.147.185.131",  # ooni.id_88 (cl.dns_isp_id_sehat_transhybrid_2): Trans Hybrid
        "112.215.37.181",  # ooni.id_dns_101
        "114.4.66.127",  # ooni.id_dns_102
        "118.98.96.151",  # ooni.id_dns_103
        "210.210.178.70",  # ooni.id_dns_109
        "43.225.64.187",  # ooni.id_dns_hspnet: HSPnet
        "202.57.25.3",  # ooni.id_blokir_winet: WINET
        # ---- China: the Great Firewall's long-published injected answers (real addresses of
        # unrelated networks, which is why a bogon check alone misses them)
        "8.7.198.45",  # ooni.cn_0 (cl.dns_nat_cn_poison_01)
        "37.61.54.158",  # ooni.cn_1 (cl.dns_nat_cn_poison_02)
        "46.82.174.68",  # ooni.cn_2 (cl.dns_nat_cn_poison_03)
        "78.16.49.15",  # ooni.cn_3 (cl.dns_nat_cn_poison_04)
        "93.46.8.89",  # ooni.cn_4 (cl.dns_nat_cn_poison_05)
        "159.106.121.75",  # ooni.cn_5 (cl.dns_nat_cn_poison_06)
        # ooni.cn_6 (cl.dns_nat_cn_poison_07, cl.dns_nat_cn_poison_09, ooni.cn_8)
        "203.98.7.65",  # ooni.cn_6
        "59.24.3.173",  # ooni.cn_7 (cl.dns_nat_cn_poison_08)
        "243.185.187.39",  # ooni.cn_9 (cl.dns_nat_cn_poison_10)
    }
)

DEFAULT_BLOCKPAGE_PATTERNS: Final[tuple[str, ...]] = (
    # ---- Iran: the blockpage is a 200 whose body is an iframe to the filter's address
    # ooni.ir_0, cl.nat_ir_iframe_forward_ipv4, cp.b_nat_ir_national_1..3 (10.10.34.33-36)
    r"""(?i)<iframe[^>]*\ssrc=["']?https?://10\.10\.34\.3[3-6]\b""",
    # ooni.ir_1 (cl.nat_ir_iframe_forward_ipv6): the same iframe to http://[d0:0:0:0:0:0:0:11:80]
    r"""(?i)<iframe[^>]*\ssrc=["']?https?://\[d0:0:0:0:0:0:0:11\b""",
    r"(?i)\bpeyvandha\.ir/1-2",  # ooni.ir_3 (cl.nat_ir_block_peyvandha): the destination page
    r"(?i)\binternet\.ir/1-2\b",  # ooni.ir_2 (cl.nat_ir_block_internetir): its older home
    # ---- Turkey. Never match the law number "5651" alone: ordinary Turkish sites cite
    # "5651 sayılı Kanun" in their legal footers.  # noqa: RUF003 (Turkish dotless i)
    # ooni.tr_0: the title of the national blockpage of TİB, the authority BTK absorbed in 2016
    "<title>Telekomünikasyon İletişim Başkanlığı</title>",  # noqa: RUF001 (Turkish dotless i)
    # ooni.tr_2: the English text of that blockpage
    r"(?i)based on the law nr\. 5651, administration measure has been taken",
    # cp.b_nat_tr_1_satellite: the court-order page of the Access Providers' Union (ESB)
    "aşağıdaki karara istinaden 5651 sayılı Kanun uyarınca Erişim Sağlayıcıları Birliği "  # noqa: RUF001
    "tarafından erişime engellenmiştir",  # noqa: RUF001
    # cp.b_nat_tr_2_satellite .. cp.b_nat_tr_5_satellite: "... blocked by the decision of"
    # a criminal judgeship of peace (Sulh Ceza), a prosecutor (CBS) or TİB
    "(?:Sulh CM|SULH CM|Bakırköy CBS|Telekomünikasyon İletişim Başkanlığı) "  # noqa: RUF001
    "kararıyla erişime engellenmiştir",  # noqa: RUF001
    # cp.b_nat_tr_6_satellite, narrowed to the numeric date that follows on the page
    r"has been blocked by the decision dated \d{1,2}[./]\d{1,2}[./]\d{4}",
    # ---- Russia: links to Roskomnadzor's register
    r"(?i)\bhttps?://eais\.rkn\.gov\.ru\b",  # ooni.ru_5, cp.b_nat_ru_12_satellite
    # cp.b_nat_ru_rkn_body, cp.b_nat_ru_rkn_location, cp.b_nat_ru_satellite_1: the lookup page
    r"(?i)\bhttps?://blocklist\.rkn\.gov\.ru\b",
    # cp.e_unk_report: the English text of a register blockpage
    r"<p>Access to the requested resource has been blocked<br/>by the decision of public "
    r"authorities\.</p>",
    # cl.inst_edu_runnet_blockpage (filed under Location, but a body text): RUNNet's page
    r"Dear user! Access to requested resource has been blocked by decision of public "
    r"authorities of Russian Federation\.",
    # ---- Russia: the largest ISPs
    # ooni.ru_6 (cl.isp_ru_rostelcom_warning_forward),
    # ooni.ru_25 (cl.isp_ru_rostelcom_block_forward): Rostelecom
    r"(?i)//(?:warning|block)\.rt\.ru\b",
    r"(?i)(?:^|//)block\.ip\.center\.rt\.ru\b",  # ooni.ru_52 (cl.isp_ru_rostelecom_ipcenter)
    r"(?i)//rt\.ru/\?utm_source=warningpage\b",  # cp.c_isp_ru_pjscrostelekom: the page's logo
    r"saved from url=\(0020\)http://95\.167\.13\.50/",  # cp.c_isp_ru_generalbp9: Rostelecom's
    # cl.isp_ru_mts_block, cl.isp_ru_mts_forward, ooni.ru_3, cp.c_isp_ru_mts: MTS
    r"(?i)//(?:subblock|blocked)\.mts\.ru\b",
    r"(?i)//(?:www\.)?tmn\.ru/cgi-bin/stub_html\.pl",  # cp.c_isp_ru_sibitex_2_body/location
    # cl.isp_ru_beeline_blackhole_forward, cp.c_isp_ru_beeline: Beeline
    r"(?i)//blackhole\.beeline\.ru\b",
    r"(?i)^https?://m\.megafonpro\.ru\b",  # ooni.ru_74, cl.isp_ru_megafon_forward: MegaFon
    r"(?i)//t2blocked\.com\b",  # ooni.ru_26, cl.isp_ru_tele2_forward_1: Tele2
    r"(?i)//t2rkn\.com/",  # ooni.ru_28 (cl.isp_ru_tele2_block): Tele2's own page
    r"//217\.169\.82\.130/",  # ooni.ru_27, cl.isp_ru_tele2_forward_2: Tele2 by address
    # cl.isp_ru_ertelecom_rkn_forward (cp.c_isp_ru_ertelecom_redirect_301_1_satellite)
    r"(?i)//lawfilter\.ertelecom\.ru\b",  # ER-Telecom (Dom.ru)
    # ooni.ru_17, ooni.ru_18, cl.isp_ru_mgts_rkn_forward_1, cl.isp_ru_mgts_rkn_forward_2: MGTS
    r"(?i)//block(?:ed)?\.mgts\.ru\b",
    r"//62\.112\.121\.68\b",  # ooni.ru_19, cl.isp_ru_mgts_rkn_forward_3: MGTS by address
    # ooni.ru_29 (cl.isp_ru_ttk_fz139_forward, cp.c_isp_ru_ttk_redirect_302_satellite): TTK
    r"(?i)//fz139\.ttk\.ru\b",
    # ooni.ru_55, ooni.ru_56, cl.isp_ru_netbynet_forward_1, cl.isp_ru_netbynet_forward_2
    r"(?i)//blocked\.(?:netbynet|ti)\.ru\b",  # NetByNet
    r"(?i)//blocked\.akado\.ru\b",  # ooni.ru_43, cl.isp_ru_akado_forward: Akado
    r"(?i)akado\.ru/services/itv/\?utm_source=blocked-RKN",  # cl.isp_ru_akado_block_1
    r"(?i)\.akado-ural\.ru/web/rkn/site_blocked\.css",  # ooni.ru_45 (cl.isp_ru_akado_block_3)
    # ooni.ru_64, ooni.ru_65, cl.isp_ru_yota_forward, cp.c_isp_ru_yota: Yota
    r"(?i)//forbidden\.yota\.ru\b",
    r"(?i)//blocked\.tinkoff\.ru\b",  # ooni.ru_57, cl.isp_ru_tinkoff_forward: Tinkoff Mobile
    r"(?i)//(?:www\.)?ufanet\.ru/blocking\.html",  # ooni.ru_77, cl.isp_ru_ufanet_forward
    r"(?i)//you-shall-not-pass\.is74\.ru\b",  # ooni.ru_69, cl.isp_ru_intersvas_forward
    # ooni.ru_70 (cl.isp_ru_intersvas_block): Intersvyaz's app link on its blockpage
    r"id=com\.intersvyaz\.lk&referrer=utm_source%3Dlp_you_shall_not_pass_parking",
    # ooni.ru_11 (cp.c_isp_ru_novotelecom_2_location), cl.isp_ru_novotelecom_forward,
    # cp.c_isp_ru_novotelecom_body, cp.c_isp_ru_novotelecom_location,
    # cp.c_isp_ru_novotelecom_2_body: Novotelecom
    r"(?i)//zapret\.2090000\.ru\b",
    # ooni.ru_7, cl.isp_ru_orionnet_forward, cp.c_isp_ru_orion_body/location: Orion Telecom
    r"(?i)//block\.orionnet\.ru\b",
    r"^http://195\.94\.233\.66\?UrlRedir=",  # ooni.ru_33 (cl.isp_ru_westcall_forward_1)
    r"(?i)//zapret\.westcall\.net/",  # ooni.ru_34 (cl.isp_ru_westcall_forward_2): Westcall
    # ---- Russia: regional ISPs and networks enforcing the register
    # ooni.ru_2, ooni.ru_62, cl.isp_ru_crelcom_forward, cl.isp_ru_feonet_forward: Crimea
    r"(?i)//erblock\.(?:crimea\.com|feonet\.net)\b",
    # ooni.ru_9, cl.isp_ru_elight_forward, cp.c_isp_ru_goodline_body/location,
    # cp.e_unk_ru_blocked_body/location: E-Light, Goodline
    r"(?i)//site-blocked\.ru\b",
    r"(?i)//block\.intersat\.ru\b",  # ooni.ru_10, cl.isp_ru_convex_intersat_forward
    r"(?:^|//)195\.146\.65\.20/block\.html",  # ooni.ru_12 (cl.isp_ru_relline_forward)
    r"(?i)//stat\.profintel\.ru/block/blacklist/",  # ooni.ru_13, cl.isp_ru_profintel_forward
    # ooni.ru_14 (cp.c_isp_ru_post_location), cl.isp_ru_postltd_forward, cp.c_isp_ru_post_body
    r"(?i)//blockpage\.kmv\.ru\b",
    r"(?i)//blacklist\.planeta\.tc\b",  # ooni.ru_15, cl.isp_ru_planeta_forward
    # ooni.ru_16 (cl.isp_ru_megamax_rkn_forward_1): Megamax
    r"^http://89\.185\.75\.227/451/1f50893f80d6830d62765ffad7721742\.html",
    r"//81\.163\.39\.153:8080\b",  # cl.isp_ru_megamax_rkn_forward_2: Megamax, another host
    r"(?i)//rinet\.ru/blocked/",  # ooni.ru_22 (cl.isp_ru_rinet_forward), cl.isp_ru_rinet_block
    r"(?i)//block\.naukanet\.ru\b",  # ooni.ru_23, cl.isp_ru_naukanet_forward
    r"(?i)//zapret-info\.tis-dialog\.ru\b",  # ooni.ru_24, cl.isp_ru_dialog_forward
    r"(?i)//kaspnet\.ru/sites/default/files/0\.html",  # ooni.ru_31, cl.isp_ru_kaspnet_forward
    # ooni.ru_36 (cl.isp_ru_sibset_149_forward, cp.c_isp_ru_sibset_location),
    # cp.c_isp_ru_sibset_body: Sibset
    r"(?i)//211\.ru/149\.html",
    r"(?i)//blocked\.as20764\.net/blocked\.php",  # ooni.ru_40, cl.isp_ru_rascom_forward
    r"(?i)//block\.ecotelecom\.ru\b",  # ooni.ru_42, cl.isp_ru_ecotelecom_forward
    r"(?i)//rkn\.pakt\.ru\b",  # ooni.ru_46, cl.isp_ru_pakt_forward
    # ooni.ru_47 (cl.isp_ru_tcentr_block), cl.isp_ru_tcentr_forward: Telecom Center
    r"//185\.36\.60\.2/(?:blocked\.html|icons/logo\.png)",
    r"(?i)//rkn\.ucanet\.ru\b",  # ooni.ru_49 (cl.isp_ru_ucanet_block)
    r"(?i)//(?:www\.)?lanta-net\.ru/zapret/",  # ooni.ru_50 (cl.isp_ru_lantanet_block)
    r"//193\.203\.61\.234\b",  # cl.isp_ru_lantanet_forward
    # ooni.ru_51 (cp.c_isp_ru_skynet_location), cl.isp_ru_skynetkazan_forward,
    # cp.c_isp_ru_skynet_body: Skynet Kazan
    r"(?i)//(?:www\.)?skynet-kazan\.com/_blocked\.htm",
    r"(?i)//block\.k-telecom\.org\b",  # ooni.ru_53, cl.isp_ru_ktelecom_forward
    r"(?i)//forbidden\.podryad\.tv\b",  # ooni.ru_54, cl.isp_ru_podryad_forward
    r'podryad\.tv" class="header__logo header__logo__locked"',  # cl.isp_ru_podryad_block
    # ooni.ru_58, cl.isp_ru_ugmktelecom_forward, cp.c_isp_ru_ugmk: UGMK Telecom
    r"(?i)//blocked\.ugmk-telecom\.ru\b",
    r"(?i)//block\.yaltanet\.ru\b",  # ooni.ru_59, cl.isp_ru_yaltanet_forward
    r"(?i)//deny\.cifra1\.ru\b",  # ooni.ru_60, cl.isp_ru_almatel_forward: Almatel
    r"(?i)almatel\.ru/ajax/all\.php\?e=ott_forbidden_reg",  # ooni.ru_61 (cl.isp_ru_almatel_block)
    r"(?i)//forbidden\.2kom\.ru\b",  # cl.isp_ru_2kom_forward
    r"(?i)//cacti\.telincom\.ru/blocked\.html",  # ooni.ru_67, cl.isp_ru_telincom_forward
    r"(?i)//rkn\.clkon\.net/images/",  # ooni.ru_68 (cl.isp_ru_cityline_block): City Line
    # ooni.ru_71 (cl.isp_ru_svyazenergo_forward), cl.isp_ru_svyazenergo_block: Svyaz Energo
    r"(?i)//(?:www\.)?sv-en\.ru/block",
    r"(?i)//notice\.obit\.ru/censored",  # cl.isp_ru_obit_forward
    # ooni.ru_78 (cl.inst_corp_prometey_datacenter_blockpage): Prometey (hosting)
    r"(?i)//zapret-info\.prometey\.me\b",
    # ooni.ru_82, cl.inst_edu_runnet_forward: RUNNet, the research network, by the register
    r"(?i)//block\.runnet\.ru\b",
    r"(?i)//blocked\.inetvl\.ru\b",  # cl.isp_ru_alliancetelecom_forward
    # cl.isp_ru_avantel_forward, cp.c_isp_ru_avantel_1_body/location,
    # cp.c_isp_ru_avantel_2_body/location: Avantel
    r"(?i)//block\.msk\.avantel\.ru\b",
    r"(?i)//law\.filter\.comfortel\.pro\b",  # cl.isp_ru_comfortel_forward
    # cl.isp_ru_convex_rkn_foward (cp.c_isp_ru_convex_location), cp.c_isp_ru_convex_body
    r"(?i)//ban\.convex\.ru/index\.html",
    # cl.isp_ru_infolink_block, cl.isp_ru_infolink_forward, cp.f_gen_ru_10_body/location,
    # cp.c_isp_ru_infolink_body/location: Info-Link
    r"(?i)//(?:missing\.info-link\.ru/|85\.234\.0\.61\b|infolink\.ru/messages/180\.html)",
    r"(?i)//block\.kmtn\.ru\b",  # cl.isp_ru_kmtn_forward
    r"(?i)//error\.link-region\.ru:8099\b",  # cl.isp_ru_linkregion_forward
    r"//81\.200\.123\.101\b",  # cl.isp_ru_maximatelecom_forward: MaximaTelecom
    r"(?i)//(?:www\.)?megion\.biz/block\.html",  # cl.isp_ru_megion_forward
    # cl.isp_ru_miranda_block, cl.isp_ru_miranda_forward: Miranda Media (Crimea)
    r"(?i)//(?:109\.200\.155\.73/info\.js|(?:www\.)?miranda-media\.ru/stop_rkn)",
    r"//89\.223\.47\.135\b",  # cl.isp_ru_nevalink_forward: Nevalink
    r"//95\.131\.176\.27\b",  # cl.isp_ru_primelink_forward: Primelink
    r"//91\.215\.188\.193\b",  # cl.isp_ru_rialink_forward: Ria Link
    r"(?i)//denied\.sochi-online\.com\b",  # cl.isp_ru_sochionline_forward
    r"(?i)//(?:www\.)?sovatelecom\.ru/ZAPRET\.html",  # cl.isp_ru_sovatelecom_forward
    r"(?i)//zapret\.stacktelecom\.ru\b",  # cl.isp_ru_stacktelecom_forward
    r"(?i)//block\.strelatelecom\.ru\b",  # cp.c_isp_ru_strela_body/location
    r"(?i)//(?:www\.)?sv-tel\.ru/ban/",  # cl.isp_ru_svyazist_forward
    r"(?i)//(?:www\.)?teleseti\.com/zapret/zapret-new\.php",  # cl.isp_ru_teleseti_forward
    # cp.c_isp_ru_tscrimea, cp.c_isp_ru_tscrimea_2, cp.c_isp_ru_tscrimea_3_body/location: TS
    # Crimea (not its address, cl.isp_ru_tscrimea_forward: Censored Planet lists it as a false
    # positive, cp.fp_r_fp_52_body/location)
    r"(?i)//rknblock\.tscrimea\.(?:ru|com)\b",
    r"(?i)//mega\.nn\.ru/l7\.html",  # cl.isp_ru_virginconnect_forward
    # cl.isp_ru_wiland_forward, cp.c_isp_ru_wiland_body/location: Wiland
    r"(?i)//blocked\.wiland\.ru\b",
    r"(?i)//radugainternet\.ru/kasat/access-error",  # cp.c_isp_ru_radugainternet_body/location
    r"(?i)//zapret\.alestanet\.ru\b",  # cp.c_isp_ru_alestanet_body/location
    r"(?i)//vsevnet\.ru/zapr_site\.html",  # cp.c_isp_ru_vsevnet_body/location
    r"(?i)//mediakvant\.ru/block",  # cp.c_isp_ru_mediakvant_body/location
    r"(?i)//rta-telecom\.ru/deny\.html",  # cp.c_isp_ru_ita
    r"(?i)//(?:www\.)?arbuz\.ru/zapret\.htm",  # cp.c_isp_ru_arbuz_body/location
    r"//217\.25\.208\.13\b",  # cp.c_isp_ru_omkc_body/location
    r"(?i)//zapret-info\.b2b\.at-home\.ru\b",  # cp.c_isp_ru_at_home_body/location
    r"(?i)//alert\.enicom\.ru:81/",  # cp.c_isp_ru_enicom_body/location
    r"(?i)//detect-web\.signaltv\.net/3/",  # cp.c_isp_ru_signaltv_body/location
    r"(?i)//blackhole\.insysnet\.ru/zapret-info",  # cp.c_isp_ru_insysnet_body/location
    r"(?i)//noaccess\.masterra\.ru/zapret/",  # cp.c_isp_ru_masterra_body/location
    r"(?i)//blocked\.kvidex\.ru\b",  # cp.c_isp_ru_kividex_body/location
    # cp.c_isp_ru_taiget_body/location, cp.c_isp_ru_taiget_body_2, cp.c_isp_ru_taiget_location_2
    r"(?i)//hold\.taiget\.ru/block",
    r"(?i)//stop\.edpnet\.net/ru-censored/",  # cp.c_isp_ru_edpnet_body/location
    # cp.c_isp_ru_telemagdan_2_body/location (not its home page, cp.c_isp_ru_telemagadan_*)
    r"(?i)//www\.telemagadan\.ru/bloked\.php",
    r"(?i)//host72\.ru/blocked/",  # cp.c_isp_ru_infodom_body/location
    # cp.c_isp_ru_divo_body/location: the percent-encoded Russian for "this resource is blocked"
    r"(?i)//www\.divo\.ru/%D0%B4%D0%B0%D0%BD%D0%BD%D1%8B%D0%B9-%D1%80%D0%B5%D1%81%D1%83%D1%80"
    r"%D1%81-%D0%B7%D0%B0%D0%B1%D0%BB%D0%BE%D0%BA%D0%B8%D1%80%D0%BE%D0%B2%D0%B0%D0%BD/",
    # cp.c_isp_ru_iterika, cp.c_isp_ru_iterika_2_body/location
    r"(?i)//iterika\.ru/blocked\.html\?",
    r"(?i)//billing\.spb\.rsvo\.ru/blocked/",  # cp.c_isp_ru_rvso_body/location
    r"(?i)//blackhole\.piter-telecom\.ru\b",  # cp.c_isp_ru_peter_body/location
    r"(?i)//block\.kamensktel\.ru\b",  # cp.c_isp_ru_kamenkstel_body/location
    r"(?i)//block\.sivash\.net/index\.html",  # cp.c_isp_ru_sivash_body/location
    r"(?i)//close\.g-service\.ru/access_denied_op\.html",  # cp.c_isp_ru_game_service_*
    r"(?i)//krsn\.ru/redir/extrim/",  # cp.c_isp_ru_intertax_body/location
    # cp.c_isp_ru_east_media_body/location, cp.c_isp_ru_east_media_2_body/location
    r"(?i)//law\.vms56\.ru\b",
    r"(?i)//redirects\.tvhost\.ru/ban/",  # cp.c_isp_ru_sky@net_body/location
    # cp.c_isp_ru_sevstar_body/location, cp.c_isp_ru_sevstar_2_body/location
    r"(?i)//rublacklist\.sevstar\.net\b",
    r"(?i)//07\.altegrosky\.ru/180\.html",  # cp.c_isp_ru_altegrosky_body/location
    r"(?i)//dtel\.ru/block\.htm",  # cp.c_isp_ru_dtel_body/location
    r"(?i)//stub\.dianet\.ru/forbidden/",  # cp.c_isp_ru_dianet_body/location
    r"(?i)//(?:www\.)?maglan\.ru/internet/blocked",  # cp.c_isp_ru_maglan_body/location
    r"(?i)//zapret-info\.dsi\.ru\b",  # cp.c_isp_ru_dsi
    r"(?i)//(?:www\.)?kristel\.ru/\?mode=zapret",  # cp.c_isp_ru_kristel
    # cp.c_isp_ru_itnet_1, cp.c_isp_ru_itnet_2_body/location
    r"(?i)//block\.itnet33\.ru/info/forbiddens\.php",
    r"(?i)//block\.westlan\.ru\b",  # cp.c_isp_ru_westlan
    r"(?i)//deny\.spacenet\.ru/",  # cp.c_isp_ru_spacenet
    r"(?i)//intel\.acmetelecom\.ru/block\.htm",  # cp.c_isp_ru_acme
    r"(?i)//(?:www\.)?mosnet\.ru/customers/obsluzhivanie/blocked-site\.html",  # cp.c_isp_ru_mosnet
    # cp.c_isp_ru_metronet_body/location, cp.c_isp_ru_metronet_2_body/location
    r"(?i)//www\.metro-set\.ru/zapret",
    r"(?i)//redcom\.ru/law/index\.html",  # cp.c_isp_ru_redcom_body/location
    r"(?i)//notify\.bashtel\.ru/block-rkn/",  # cp.c_isp_ru_bashtel
    r"(?i)//zapret\.iks\.ru/",  # cp.c_isp_ru_iks_body/location
    r"(?i)//(?:www\.)?flex\.ru/zapret\.html",  # cp.c_isp_ru_flex
    r"(?i)//blacklist\.schelkovo-net\.ru/\?",  # cp.c_isp_ru_schelkovonet_body/location
    r"(?i)//block\.tk-miran\.ru/block\.php\?",  # cp.c_isp_ru_tkmiran_body/location
    r"(?i)//blacklist\.miralogic\.ru\b",  # cp.c_isp_ru_miralogic_redirect_301_1_satellite
    r"(?i)//block\.kvant-telecom\.ru\b",  # cp.c_isp_ru_kvant_telecom_redirect_302_satellite
    # cp.e_unk_ru_roskomnadzor_2_body/location
    r"//176\.114\.16\.100/block_url\.html",
    # cp.a_prod_vasexperts_body/location: the stock page of SKAT DPI, which ISPs run for the
    # register (the vendor's own domain, cl.prod_vasexperts_forward, is not taken)
    r"(?i)//vasexperts\.ru/test/blocked\.php",
    # ---- Belarus
    # ooni.by_0, cl.isp_by_a1_forward, cl.isp_by_a1_block: A1 (Velcom), the Ministry of
    # Information's notice
    r"(?i)//www\.(?:a1|velcom)\.by/mininfo/",
    r"//82\.209\.230\.23\b",  # ooni.by_1, cl.isp_by_beltelecom_forward: Beltelecom
    r"(?i)//internet\.mts\.by/blocked/",  # ooni.by_2, cl.isp_by_mts_forward: MTS
    # ---- South Korea: ooni.kr_1, ooni.kr_2, cp.b_nat_kr_comm, cp.b_nat_kr_comm_2,
    # cp.b_nat_kr_comm_3: the KCSC warning page
    r"(?i)//(?:www\.)?warning\.or\.kr\b",
    # ---- Indonesia: the national filter (Kominfo's TrustPositif, Telkom's Uzone pages)
    # ooni.id_6 (cl.nat_id_trustpositif_block_5), cp.b_nat_id_kominfo_body,
    # cp.b_nat_id_kominfo_location, cp.c_isp_id_31_satellite
    r"(?i)//trustpositif\.kominfo\.go\.id\b",
    # ooni.id_0, ooni.id_1, ooni.id_2, ooni.id_3 (cl.nat_id_trustpositif_block_1),
    # ooni.id_5 (cl.nat_id_trustpositif_block_3), ooni.id_positif_0,
    # cl.nat_id_trustpositif_forward, cl.nat_id_trustpositif_forward_2,
    # cl.nat_id_trustpositif_forward_3
    r"(?i)//(?:internet-?positif\.org|(?:internet)?positif\.uzone\.id|mercusuar\.uzone\.id"
    r"|block\.uzone\.id)\b",
    r"(?i)\.uzone\.id/assets/internetpositif",  # ooni.id_4 (cl.nat_id_trustpositif_block_2)
    r"(?i)//lamanlabuh\.aduankonten\.id\b",  # ooni.id_lamanlabuh_kominfo
    r"di\.og\.ofnimok@netnoknauda",  # ooni.id_38 (cl.nat_id_idnic_block): a reversed e-mail
    # cp.c_isp_id_govt_trustpositive_1, ooni.id_telekomunikasi_0
    r"<title>Internet Positif(?: - Indonesia)?</title>",
    # ooni.id_7: "cannot be accessed through this network, according to the regulations"
    r"tidak bisa diakses melalui jaringan ini sesuai peraturan perundang-undangan",
    # cp.b_nat_id_27_satellite: "the site ... contains content the government does not allow"
    r"Situs yang dituju terindikasi mengandung konten yang tidak diperkenankan pemerintah",
    # ooni.id_10
    r"We are blocking this abusive site as stated by the Indonesia regulation in order to "
    r"provide Internet Sehat\.",
    # ---- Indonesia: ISPs enforcing it
    # ooni.id_24 (cl.isp_id_telkomsel_block_baik_1), ooni.id_34
    # (cp.c_isp_id_telkomsel_redirect_301_4_satellite), cl.isp_id_telkomsel_forward: Telkomsel
    r"(?i)//internetbaik\.telkomsel\.com/",
    # ooni.id_25 (cl.isp_id_telkomsel_block_baik_2): the page's meta keywords
    r"telkomsel\|internet sehat\|baik\|internet baik",
    # ooni.id_19 (cl.isp_id_indosatooredo_block_1), ooni.id_20 (cl.isp_id_indosatooredo_block_2,
    # cp.c_isp_id_indosat): Indosat Ooredoo
    r"<title>(?:Indosatooredoo Netsafe|Netsafe IndosatM2)</title>",
    # ooni.id_21 (cl.isp_id_indosatooredo_block_js_variant), cl.isp_id_indosatooredo_forward1,
    # cl.isp_id_indosatooredo_forward2, cp.c_isp_id_netsafe_redirect_302_satellite
    r"(?i)//(?:netsafe\.indosatooredoo\.com|114\.6\.128\.7)\b",
    # ooni.id_indosat_0: "negative [content] under Kominfo Ministerial Regulation 19/2014"
    r"negatif sesuai dengan Peraturan Menteri Kominfo No 19 Tahun 2014",
    # ooni.id_26 (cl.isp_id_xl_block), ooni.id_27 (cl.isp_id_xl_block_2), ooni.id_35,
    # ooni.id_xl_3, cl.isp_id_xl_forward: XL Axiata
    r"(?i)//(?:blockpage\.xl\.co\.id|blockpage\.xlaxiata\.id|www\.xl\.co\.id/xlblockpage)\b",
    r"<p>which is not permitted by goverment regulation\.</p>",  # ooni.id_xl_0, sic
    # ooni.id_30 (cl.isp_id_tri_block), ooni.id_36, cl.isp_id_tri_forward: Tri
    r"(?i)//restricted\.tri\.co\.id\b",
    # ooni.id_8 (cl.isp_id_mncplay_sehat_blockpage): MNC Play
    r"(?i)//internetpositif\.mncplaymedia\.com\b",
    # ooni.id_11 (cl.isp_id_fastnet_sehat_blockpage_1), ooni.id_12
    # (cl.isp_id_fastnet_sehat_blockpage_2, cp.f_gen_id_22_satellite), cp.f_gen_id_4_satellite,
    # ooni.id_first_0: First Media (FastNet)
    r"internetsehatdanamanfastnet\.html|\bpname='internet-sehat';"
    r"|<title>FastNet \| Internet Sehat dan Aman</title>",
    r"(?i)//xblock\.gmedia\.net\.id\b",  # ooni.id_13 (cl.isp_id_gmedia_xblock_blockpage)
    # ooni.id_17, cl.isp_id_citranet_sehat_block, cl.isp_id_citranet_sehat_forward: Citranet
    r"(?i)//filter\.citra\.net\.id\b",
    r"<h2>INTERNET SEHAT CITRANET</h2>",  # ooni.id_18
    # ooni.id_33 (cp.c_isp_id_myrepublic_redirect_301_3_satellite), cl.isp_id_myrepublic_forward
    r"(?i)//block\.myrepublic\.co\.id\b",
    # ooni.id_28 (cl.isp_id_biznet_block, cp.c_isp_id_biznetnetworks_28_satellite): Biznet
    r"(?i)//www\.biznetnetworks\.com/safesurf/",
    # cp.c_isp_id_hypernet_body/location, cp.b_nat_id_23_satellite,
    # cp.c_isp_id_hypernet_redirect_301_1_satellite: Hypernet
    r"(?i)//sehat\.hypernet\.co\.id\b",
    # cp.c_isp_id_melsa_body/location, cp.c_isp_melsa_id_7_satellite: Melsa
    r"(?i)//www\.melsa\.net\.id/main/blocked",
    r"(?i)//block\.utaramedia\.net\b",  # cp.c_isp_id_utaramedia
    r"(?i)//trustpositif\.iforte\.net\.id\b",  # cp.c_isp_id_iforte_redirect_301_2_satellite
    r"Block Page - CBN Internet",  # cp.c_isp_cbn
    # ---- Thailand
    # cp.b_nat_th_illegal_body/location: Ministry of Digital Economy and Society
    r"(?i)//illegal\.mdes\.go\.th\b",
    # ooni.th_0 (cl.nat_th_deb_blockpage)
    r"Sorry\. Access to this website has been disabled because the Ministry of Digital "
    r"Economic",
    r"^http://103\.86\.50\.16\b",  # ooni.th_1 (cl.nat_th_deb_forward_2): the page in 2019
    # ooni.th_2 (cl.nat_th_deb_forward_1, cl.nat_th_forward_1, ooni.th_3),
    # ooni.th_7 (cl.isp_th_cxloxinfo_accessurlblock_forward), ooni.th_ministry_1
    r"//103\.208\.24\.21\b",
    r"(?i)//prohibit\.ais-idc\.com\b",  # ooni.th_4, cl.nat_th_ictprohibit_forward
    r"//124\.40\.225\.20/\?accessurl=",  # ooni.th_6 (cl.isp_th_dtac_accessurlblock_forward)
    # ooni.th_ministry_4
    r"The Ministry of Information and Communication Technology has temporarily ceased the "
    r"service to access such kind of information",
    r"An {1,2}access to such information has been temporarily ceased",  # ooni.th_temp_0
    # ooni.th_ministry_5, ooni.th_ministry_6
    r'<center> <img src="(?:\./Redirecting_files/)?ict\.jpg"> </center>',
    r"<title>Tcsd\.info</title>",  # ooni.th_9: the police's Technology Crime Suppression Div.
    r"(?i)//redir\.csloxinfo\.com/court\.html",  # cp.d_corp_thai_csloxinfo_body/location
    # ---- Myanmar
    # cl.nat_mm_transportcomms_block: Ministry of Transport and Communications
    r"(?i)blocked as per directive received from the Ministry of Transport and Communications",
    r"(?i)//notice\.myanmarnet\.com\b",  # ooni.mm_0, cl.isp_mm_myanmarnet_block_forward
    # ---- Pakistan
    # cp.b_nat_pak_isp_common_blockpage: the common PTA notice
    r"(?i)prohibited for viewership from within Pakistan",
    # ooni.pk_1 (cl.isp_pk_mobillink_block_forward): Mobilink (Jazz)
    r"//119\.73\.65\.87:8080/redirect\.html\?accessurl=",
    r"(?i)//redirect\.wi-tribe\.net\.pk/alert/",  # cp.c_isp_pk_witribe
    # cp.c_isp_pk_wateen_body/location, cp.c_isp_pk_wateen_2: Wateen
    r"(?i)//restrictk?\.wateen\.net\b",
    # ---- India: the Department of Telecommunications' and MeitY's orders
    # ooni.in_4 (cl.isp_in_airtel_block_forward), cp.c_isp_in_airtel, ooni.in_airtel: Airtel
    r"(?i)//www\.airtel\.in/(?:dot/|court-orders/)",
    # ooni.in_7
    r"The URL has been blocked as per the instructions of the DoT in compliance to the "
    r"orders of Court of Law",
    # cp.c_isp_in_court_order
    r"The access to this site is prohibited as per instructions from Authority\(s\)/Honorable "
    r"Court Order",
    r"Access Denied as per DOT/TRAI Guidelines - By Order </H1>",  # cp.c_isp_in_court_order_2
    # cp.c_isp_in_generic_dot_1
    r"blocked as per instructions from Department of Telecommunications of India",
    # cp.c_isp_in_generic_dot_2
    r"Your requested URL has been blocked as per the directions received from Department of "
    r"Telecommunications, Government of India",
    # cp.b_nat_id_1_satellite: an Indian page despite its name
    r"The website/domain has been blocked as per order of Ministry of Electronics and "
    r"Information Technology under IT Act, 2000",
    # cp.e_unk_competent_authority
    r"This site has been blocked as per the instructions of Competent Authority</font>",
    # ---- Nepal: the Nepal Telecommunications Authority's orders
    # ooni.np_1 (cl.isp_np_worldlink_block)
    r"(?i)//(?:www\.)?nta\.gov\.np/en/notice-regarding-site-block",
    r"<title>Block By NTA</title>",  # cp.b_nat_np_2_satellite
    # cp.b_nat_np_3_satellite
    r"The access to this website has been restricted as per the directive of Nepal",
    # cp.e_unk_nta_block; OONI's "NTA.s" stands for the apostrophe, in whatever encoding
    r"<h1>This web site has been blocked as per NTA.{1,7}s policy</h1>",
    r"(?i)//blockdomain\.worldlink\.com\.np\b",  # ooni.np_0, cl.isp_np_worldlink_forward
    # ---- Uzbekistan: ooni.uz_0, the ministry's register (anchored: ordinary pages link it)
    r"(?i)^https?://reestr\.mitc\.uz/",
    # ---- Saudi Arabia
    # cp.b_nat_sa_national_2: a `regexp` row, kept as it is
    r"If you believe the requested page should not be blocked please.*http://www\.internet\.gov\.sa",
    # cp.b_nat_sa_violating_regulations
    r"Sorry, the requested page is violating the regulations of",
    # ooni.sa_2 (cl.inst_edu_sa_kacst_blockpage): KACST's ISU, which ran the national filter
    r"(?i)://blocking-web-server\.isu\.net\.sa/",
    # ---- United Arab Emirates
    # cl.isp_ae_etisalat_block, cp.c_isp_ae_etislat_body, cp.c_isp_ae_etislat_location: Etisalat
    r"(?i)//proxy\.etisalat\.ae\b",
    # cl.isp_ae_du_surfsafely_block_1, cl.isp_ae_du_surfsafely_forward_2, ooni.ae_2: du
    r"(?i)//lighthouse\.du\.ae\b",
    # ---- Bahrain
    # ooni.bh_0 (cl.isp_bh_batelco_block_forward), cp.b_nat_bh_national_body,
    # cp.b_nat_bh_national_location: the national page (Batelco)
    r"(?i)//www\.anonymous\.com\.bh\b",
    r"(?i)//www\.viva\.com\.bh/static/block",  # ooni.bh_1 (cl.isp_bh_viva_block_forward)
    # ooni.bh_2 (cl.isp_bh_mena_telecom_block_forward): MENA Telecom
    r"(?i)//(?:www\.)?menatelecom\.com/deny_page\.html",
    # ---- Kuwait
    # ooni.kw_0, cl.isp_kw_zain_block_forward, cp.c_isp_kw_zain: Zain
    r"(?i)//restrict\.kw\.zain\.com\b",
    r"(?i)//blocked\.fasttelco\.net/\?dpid=",  # ooni.kw_1 (cl.isp_kw_fasttelco_block_forward)
    # ooni.kw_2 (cl.isp_kw_viva_block_forward): VIVA
    r"(?i)//pay\.viva\.com\.kw/images/access-en\.jpg",
    r"(?i)//blocked\.kems\.net\b",  # cp.c_isp_kw_kems_body/location: KEMS
    # ---- Oman: the national page, in its two homes
    # ooni.om_0 (cl.nat_om_block_blockom_forward)
    r"(?i)//(?:www\.)?block\.om/newrequestform\.aspx\?accessurl=",
    # ooni.om_1 (cl.nat_om_block_siteblockedom_forward)
    r"(?i)//(?:www\.)?siteblocked\.om/\?accessurl=",
    # ---- Qatar
    # ooni.qa_1 (cl.nat_qa_block_forward_accessurl), ooni.qa_2 (cl.nat_qa_block_forward_netsweeper)
    r"(?i)//(?:www\.)?censor\.qa/\?(?:accessurl|dpid)=",
    r"^http://www\.vodafone\.qa/alu\.cfm\Z",  # ooni.qa_0: Vodafone Qatar, a full Location
    # ---- Sudan
    r"^http://196\.1\.211\.6:8080/alert/\Z",  # ooni.sd_0: a full Location
    r"^http://196\.29\.164\.27/ntc/ntcblock\.html",  # ooni.sd_1: the NTC's page
    # ooni.sd_3 (cl.isp_sd_sudatel_tpra_block_forward): Sudatel, naming the regulator
    r"/webadmin/deny/ptra/blocking\.html",
    # ---- Yemen: YemenNet, the national operator
    r"//82\.114\.160\.94/webadmin/deny/",  # ooni.ye_0 (cl.isp_ye_yemennet_ns_forward_1)
    r"(?i)//deny\.yemen\.net\.ye/webadmin/deny",  # ooni.ye_1 (cl.isp_ye_yemennet_ns_forward_2)
)

DEFAULT_BLOCKPAGE_HEADERS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "server": (
            # ooni.ae_0 (ooni.sa_1), cl.prod_wirefilter: filed under Location, but its notes
            # say headers. WireFilter, the national filter of Saudi Arabia and the UAE
            r"^Protected by WireFilter",
        ),
    }
)
