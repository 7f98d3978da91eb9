"""The shipped `blockpage_addresses`: DNS answers that are a censor's (the selection and
the sources: the package docstring)."""

from __future__ import annotations

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
