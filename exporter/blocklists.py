"""Known censorship fingerprints, shipped as the defaults of `blockpage_addresses` and
`blockpage_patterns` (see docs/configuration.md). Pure data: no I/O.

Every entry names its public source. Most come from OONI's blocking-fingerprints repository
(github.com/ooni/blocking-fingerprints, files fingerprints_dns.csv and fingerprints_http.csv),
which merges OONI's own fingerprints (`ooni.*`), Citizen Lab's filtering-annotations (`cl.*`)
and Censored Planet's (`cp.*`); the id in each comment is that file's `name` column.

The selection is conservative, because a false match turns a working service into "blocked":
- addresses: national DNS-injection answers and a few large ISPs' sinkholes of countries that
  block messengers; no opt-in "family" filters, no commercial filtering products, no addresses
  of cloud hosts that are easily reassigned;
- patterns: national blockpages and the redirect targets of large ISPs, matched on an
  ASCII-only, blockpage-specific token (a host name, an iframe target, a fixed sentence), never
  on a generic word like "blocked". ASCII tokens match whatever the page's encoding (many
  Russian blockpages are windows-1251); localized sentences would not.

Patterns are Python regular expressions matched (`search`) on the raw bytes of the start of the
body and on the `Location` header; the loader compiles them as bytes (`re.compile(p.encode())`),
so `(?i)` folds ASCII letters only. Addresses are in normal form (as `str(ip_address(...))`
prints them), the form DNS answers are compared in.

Not covered, on purpose: Iraq (no national blockpage is fingerprinted; its blocks are by
address and by shutdown, which the verdict rules judge without fingerprints) and China's
current DNS injection, which answers from large, changing pools of real foreign addresses (the
addresses below are its long-documented historic answers; rules 5 and 6 of docs/verdicts.md
catch the rest).
"""

from __future__ import annotations

from typing import Final

DEFAULT_BLOCKPAGE_ADDRESSES: Final[frozenset[str]] = frozenset(
    {
        # ---- Iran: the national filter's DNS injection, pointing at the peyvandha blockpage
        "10.10.34.34",  # ooni.ir_4 (cl.dns_nat_ir_inject_1)
        "10.10.34.35",  # ooni.ir_5 (cl.dns_nat_ir_inject_2)
        "10.10.34.36",  # cp.b_nat_ir_national_3 (blockpage at this address); OONI explorer data
        "d0::11",  # ooni.ir_1: the IPv6 variant of the injected blockpage address
        # ---- Turkey
        "195.175.254.2",  # ooni.tr_6 (cl.dns_nat_tr_poison): national poisoned reply since 2014
        # ---- Russia: ISP sinkholes for names on the Roskomnadzor register
        "5.3.3.17",  # ooni.ru_96 (cl.dns_isp_ru_rkn_ertelecom): ER-Telecom (Dom.ru)
        "212.1.226.59",  # ooni.ru_93 (cl.dns_isp_ru_rkn_netbynet): NetByNet
        "46.175.31.250",  # ooni.ru_90 (cl.dns_isp_ru_rkn_naukanet): Nauka-Svyaz
        "185.37.129.10",  # ooni.ru_89 (cl.dns_isp_ru_rkn_skynet): SkyNet
        "87.241.223.133",  # ooni.ru_95 (cl.dns_isp_ru_rkn_enforta): Enforta
        "37.44.40.254",  # ooni.ru_94 (cl.dns_isp_ru_rkn_smoltelecom): Smoltelecom
        # ---- China: the Great Firewall's long-published injected answers (real addresses of
        # unrelated networks, which is why a bogon check alone misses them)
        "8.7.198.45",  # ooni.cn_0 (cl.dns_nat_cn_poison_01)
        "37.61.54.158",  # ooni.cn_1 (cl.dns_nat_cn_poison_02)
        "46.82.174.68",  # ooni.cn_2 (cl.dns_nat_cn_poison_03)
        "78.16.49.15",  # ooni.cn_3 (cl.dns_nat_cn_poison_04)
        "93.46.8.89",  # ooni.cn_4 (cl.dns_nat_cn_poison_05)
        "159.106.121.75",  # ooni.cn_5 (cl.dns_nat_cn_poison_06)
        "203.98.7.65",  # ooni.cn_6 (cl.dns_nat_cn_poison_07)
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
    # ooni.ir_3 (cl.nat_ir_block_peyvandha): the destination blockpage, peyvandha.ir/1-2...
    r"(?i)\bpeyvandha\.ir\b",
    # ooni.ir_2 (cl.nat_ir_block_internetir): its older home, internet.ir/1-2...
    r"(?i)\binternet\.ir/1-2\b",
    # ---- Turkey. Never match the law number "5651" alone: ordinary Turkish sites cite
    # "5651 sayılı Kanun" in their legal footers.  # noqa: RUF003 (Turkish dotless i)
    # ooni.tr_0: the title of the national blockpage of TİB, the authority BTK absorbed in 2016
    "<title>Telekomünikasyon İletişim Başkanlığı</title>",  # noqa: RUF001 (Turkish dotless i)
    # ooni.tr_2: the English text of that blockpage
    r"(?i)based on the law nr\. 5651, administration measure has been taken",
    # ---- Russia: links to Roskomnadzor's register, and the largest ISPs' block redirects
    # ooni.ru_5: link to the register of blocked resources
    r"(?i)\bhttps?://eais\.rkn\.gov\.ru\b",
    # cp.b_nat_ru_rkn_body, cp.b_nat_ru_rkn_location: the register's lookup page
    r"(?i)\bhttps?://blocklist\.rkn\.gov\.ru\b",
    # ooni.ru_6 (cl.isp_ru_rostelcom_warning_forward), ooni.ru_25: Rostelecom
    r"(?i)\bhttps?://(?:warning|block)\.rt\.ru\b",
    # cl.isp_ru_mts_block, cl.isp_ru_mts_forward, ooni.ru_3: MTS
    r"(?i)\b(?:subblock|blocked)\.mts\.ru\b",
    # cl.isp_ru_beeline_blackhole_forward, cp.c_isp_ru_beeline: Beeline
    r"(?i)\bblackhole\.beeline\.ru\b",
    # ooni.ru_17, ooni.ru_18 (cl.isp_ru_mgts_rkn_forward_1/2): MGTS
    r"(?i)\bblock(?:ed)?\.mgts\.ru\b",
    # ooni.ru_26 (cl.isp_ru_tele2_forward_1), ooni.ru_28 (cl.isp_ru_tele2_block): Tele2
    r"(?i)\bt2blocked\.com\b",
    r"(?i)//t2rkn\.com/",
    # cl.isp_ru_ertelecom_rkn_forward: ER-Telecom (Dom.ru)
    r"(?i)\blawfilter\.ertelecom\.ru\b",
    # ---- other national blockpages
    # ooni.kr_1, ooni.kr_2, cp.b_nat_kr_comm: South Korea (KCSC warning page)
    r"(?i)\bwarning\.or\.kr\b",
    # ooni.id_6, cp.b_nat_id_kominfo_body/location: Indonesia (TrustPositif, Kominfo)
    r"(?i)\btrustpositif\.kominfo\.go\.id\b",
    # ooni.id_0, ooni.id_1: Indonesia (Internet Positif redirects)
    r"(?i)\binternet-?positif\.(?:org|uzone\.id)\b",
    # cp.b_nat_th_illegal_body/location: Thailand (Ministry of Digital Economy and Society)
    r"(?i)\billegal\.mdes\.go\.th\b",
    # cp.b_nat_pak_isp_common_blockpage: Pakistan (the common PTA notice)
    r"(?i)prohibited for viewership from within Pakistan",
    # cl.nat_mm_transportcomms_block: Myanmar (Ministry of Transport and Communications)
    r"(?i)blocked as per directive received from the Ministry of Transport and Communications",
    # cl.isp_ae_etisalat_block, cp.c_isp_ae_etislat_body/location: UAE, Etisalat
    r"(?i)\bproxy\.etisalat\.ae\b",
    # cl.isp_ae_du_surfsafely_block_1, ooni.ae_2: UAE, du
    r"(?i)\blighthouse\.du\.ae\b",
)
