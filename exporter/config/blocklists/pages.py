"""The shipped `blockpage_patterns` and `blockpage_headers`: what only a censor's page says
(the selection, the sources and how OONI's rows are translated: the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

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
