"""exporter.config.blocklists: the shipped blockpage fingerprints are well-formed, each one matches
the blockpage it was taken from, and none matches an ordinary page or header."""

# Turkish text has a dotless i (U+0131), which RUF001 takes for a look-alike of i.
# ruff: noqa: RUF001

from __future__ import annotations

import ipaddress
import re
from types import MappingProxyType

import pytest

from exporter.config.blocklists.addresses import DEFAULT_BLOCKPAGE_ADDRESSES
from exporter.config.blocklists.pages import DEFAULT_BLOCKPAGE_HEADERS, DEFAULT_BLOCKPAGE_PATTERNS

PATTERNS = [re.compile(p.encode()) for p in DEFAULT_BLOCKPAGE_PATTERNS]
HEADER_PATTERNS = {
    name: [re.compile(p.encode()) for p in patterns]
    for name, patterns in DEFAULT_BLOCKPAGE_HEADERS.items()
}

#: Fragments of real blockpage bodies and redirect targets (a Location value is matched by
#: the same patterns), rebuilt from the tokens OONI's fingerprints_http.csv records for them
#: (the id of each row is in blocklists.py). Location-anchored patterns get the bare URL.
BLOCKPAGES: list[str] = [
    # ---- Iran: the iframe to the filter (IPv4, with .33 seen too; and the IPv6 variant)
    '<html><head><title>M4-8</title></head><body><iframe src="http://10.10.34.34?type=Invalid'
    ' Site&policy=MainPolicy " style="width: 100%; height: 100%" scrolling="no"></iframe>',
    "<body><IFRAME SRC='http://10.10.34.33/'></IFRAME></body>",
    '</title></head><body><iframe src="http://[d0:0:0:0:0:0:0:11:80]" style="width: 100%; '
    'height: 100%" scrolling="no"></iframe></body></html>',
    "http://peyvandha.ir/1-2.html",
    '<iframe src="http://internet.ir/1-2.html" style="width: 100%">',
    # ---- Turkey
    "<html><head><title>Telekomünikasyon İletişim Başkanlığı</title></head>",
    '<td class="yazi3_1">After technical analysis and legal consideration based on the law nr. '
    "5651, administration measure has been taken for this website",
    '<div class="content">example.com hakkında aşağıdaki karara istinaden 5651 sayılı Kanun '
    "uyarınca Erişim Sağlayıcıları Birliği tarafından erişime engellenmiştir.</div>",
    "<span>Bu internet sitesi (example.com) hakkında 12.03.2021 tarih ve 2021/1234 sayılı "
    "İstanbul Anadolu 14.Sulh CM kararıyla erişime engellenmiştir.</span>",
    "09.08.2019 tarih ve 2019/5678 sayılı Bakırköy CBS kararıyla erişime engellenmiştir",
    "<p>This website (example.com) has been blocked by the decision dated 12.03.2021 and "
    "numbered 2021/1234 of İstanbul Anadolu 14th Criminal Judgeship of Peace.</p>",
    # ---- Russia: the register
    '<a href="http://eais.rkn.gov.ru/">Единый реестр</a>',
    '<a href="http://blocklist.rkn.gov.ru/">Перейти на сайт</a>',
    "<p>Access to the requested resource has been blocked<br/>by the decision of public "
    "authorities.</p>",
    "<p>Dear user! Access to requested resource has been blocked by decision of public "
    "authorities of Russian Federation.</p><!-- a poem follows -->",
    # ---- Russia: the largest ISPs
    "http://warning.rt.ru/?id=17&st=0&dt=195.82.146.214&rs=http%3A%2F%2Fexample.org%2F",
    "http://block.rt.ru/",
    "block.ip.center.rt.ru/?url=example.org",
    '<a class="logo" href="https://rt.ru/?utm_source=warningpage&utm_campaign=logo&'
    'utm_content=main"><img src="logo.svg"></a>',
    "<!DOCTYPE html>\n<!-- saved from url=(0020)http://95.167.13.50/ -->\n<html>",
    '<iframe src="http://subblock.mts.ru/api/v1/block">',
    "http://blocked.mts.ru/?host=example.org",
    "http://www.tmn.ru/cgi-bin/stub_html.pl?url=example.org",
    "http://blackhole.beeline.ru/?url=example.org",
    "http://m.megafonpro.ru:81/rkn?url=example.org",
    "http://t2blocked.com/?url=example.org",
    '<script src="//t2rkn.com/static/rkn.js"></script>',
    "http://217.169.82.130/?url=example.org",
    "http://lawfilter.ertelecom.ru/?site=example.org",
    "http://blocked.mgts.ru/?url=example.org",
    "https://block.mgts.ru/",
    "http://62.112.121.68/?url=example.org",
    "http://fz139.ttk.ru/?url=example.org",
    "http://blocked.netbynet.ru/?url=example.org",
    "http://blocked.ti.ru/",
    "http://blocked.akado.ru/?url=example.org",
    '<a href="https://www.akado.ru/services/itv/?utm_source=blocked-RKN">Смотреть ТВ</a>',
    '<link rel="stylesheet" href="https://www.akado-ural.ru/web/rkn/site_blocked.css">',
    "https://forbidden.yota.ru/",
    "https://blocked.tinkoff.ru/?url=example.org",
    "https://www.ufanet.ru/blocking.html",
    "https://you-shall-not-pass.is74.ru/",
    '<a href="https://play.google.com/store/apps/details?id=com.intersvyaz.lk&referrer='
    'utm_source%3Dlp_you_shall_not_pass_parking">',
    "http://zapret.2090000.ru/",
    "http://block.orionnet.ru/index-zapret.php",
    "http://195.94.233.66?UrlRedir=http%3A%2F%2Fexample.org%2F",
    "http://zapret.westcall.net/?url=example.org",
    # ---- Russia: regional ISPs
    "http://erblock.crimea.com/",
    "http://erblock.feonet.net/",
    "http://site-blocked.ru?url=example.org",
    "http://block.intersat.ru/",
    "195.146.65.20/block.html",
    "http://stat.profintel.ru/block/blacklist/?url=example.org",
    "http://blockpage.kmv.ru/",
    "http://blacklist.planeta.tc/",
    "http://89.185.75.227/451/1f50893f80d6830d62765ffad7721742.html",
    "http://81.163.39.153:8080/?url=example.org",
    "http://rinet.ru/blocked/index.html",
    '<body background="http://rinet.ru/blocked/blocked_bg.png">',
    "http://block.naukanet.ru/",
    "https://zapret-info.tis-dialog.ru/",
    "http://kaspnet.ru/sites/default/files/0.html",
    "http://211.ru/149.html",
    "http://blocked.as20764.net/blocked.php?url=example.org",
    "http://block.ecotelecom.ru/",
    "http://rkn.pakt.ru/",
    '<img src="http://185.36.60.2/icons/logo.png">',
    "http://185.36.60.2/blocked.html",
    '<iframe src="http://rkn.ucanet.ru/?url=example.org"></iframe>',
    '<a href="http://www.lanta-net.ru/zapret/">Подробнее</a>',
    "http://193.203.61.234/",
    "http://www.skynet-kazan.com/_blocked.htm",
    "http://block.k-telecom.org/",
    "http://forbidden.podryad.tv/",
    '<a href="http://podryad.tv" class="header__logo header__logo__locked"></a>',
    "http://blocked.ugmk-telecom.ru/",
    "http://block.yaltanet.ru/",
    "http://deny.cifra1.ru/",
    '$.post("https://www.almatel.ru/ajax/all.php?e=ott_forbidden_reg");',
    "http://forbidden.2kom.ru/",
    "https://cacti.telincom.ru/blocked.html",
    '<img src="http://rkn.clkon.net/images/logo.png">',
    "http://sv-en.ru/block.php",
    '<a href="http://www.sv-en.ru/block">',
    "http://notice.obit.ru/censored",
    '<a href="http://zapret-info.prometey.me/">',
    "http://block.runnet.ru/",
    "http://blocked.inetvl.ru/",
    "http://block.msk.avantel.ru?url=example.org",
    "http://law.filter.comfortel.pro/",
    "http://ban.convex.ru/index.html",
    '<a href="http://missing.info-link.ru/">Инфолинк</a>',
    "http://85.234.0.61/",
    "http://infolink.ru/messages/180.html",
    "http://block.kmtn.ru/",
    "http://error.link-region.ru:8099/",
    "http://81.200.123.101/",
    "http://megion.biz/block.html",
    '<script src="http://109.200.155.73/info.js"></script>',
    "http://miranda-media.ru/stop_rkn",
    "http://89.223.47.135/index.html",
    "http://95.131.176.27/",
    "http://91.215.188.193/",
    "http://denied.sochi-online.com/",
    "http://sovatelecom.ru/ZAPRET.html",
    "http://zapret.stacktelecom.ru/",
    "http://block.strelatelecom.ru/",
    "http://sv-tel.ru/ban/",
    "http://www.teleseti.com/zapret/zapret-new.php",
    "http://rknblock.tscrimea.com/",
    '<iframe src="http://rknblock.tscrimea.ru/"></iframe>',
    "http://mega.nn.ru/l7.html",
    "http://blocked.wiland.ru/",
    "http://radugainternet.ru/kasat/access-error",
    "http://zapret.alestanet.ru/",
    "http://vsevnet.ru/zapr_site.html",
    "http://mediakvant.ru/block",
    '<meta http-equiv="refresh" content="0; url= https://rta-telecom.ru/deny.html">',
    "http://www.arbuz.ru/zapret.htm",
    "http://217.25.208.13/",
    "http://zapret-info.b2b.at-home.ru/",
    "http://alert.enicom.ru:81/",
    "http://detect-web.signaltv.net/3/",
    "http://blackhole.insysnet.ru/zapret-info-tst.html",
    "http://noaccess.masterra.ru/zapret/",
    "http://blocked.kvidex.ru/",
    "https://hold.taiget.ru/block?url=example.org",
    "http://stop.edpnet.net/ru-censored/",
    "http://www.telemagadan.ru/bloked.php",
    "http://host72.ru/blocked/",
    "https://www.divo.ru/%D0%B4%D0%B0%D0%BD%D0%BD%D1%8B%D0%B9-%D1%80%D0%B5%D1%81%D1%83%D1%80"
    "%D1%81-%D0%B7%D0%B0%D0%B1%D0%BB%D0%BE%D0%BA%D0%B8%D1%80%D0%BE%D0%B2%D0%B0%D0%BD/?url=x",
    "http://iterika.ru/blocked.html?url=example.org",
    "http://billing.spb.rsvo.ru/blocked/blocked.html",
    "http://blackhole.piter-telecom.ru/",
    "http://block.kamensktel.ru/",
    "http://block.sivash.net/index.html",
    "http://close.g-service.ru/access_denied_op.html",
    "http://krsn.ru/redir/extrim/",
    "http://law.vms56.ru/law.html",
    "https://redirects.tvhost.ru/ban/",
    "http://rublacklist.sevstar.net/",
    "https://07.altegrosky.ru/180.html",
    "https://dtel.ru/block.htm",
    "http://stub.dianet.ru/forbidden/",
    "http://www.maglan.ru/internet/blocked",
    '<iframe src="http://zapret-info.dsi.ru/"></iframe>',
    '<a href="http://www.kristel.ru/?mode=zapret">',
    "http://block.itnet33.ru/info/forbiddens.php?url=example.org",
    '<iframe src="http://block.westlan.ru/"></iframe>',
    '<iframe src="http://deny.spacenet.ru/"></iframe>',
    '<iframe src="http://intel.acmetelecom.ru/block.htm"></iframe>',
    '<a href="https://www.mosnet.ru/customers/obsluzhivanie/blocked-site.html">',
    "https://www.metro-set.ru/zapret",
    "https://redcom.ru/law/index.html",
    '<iframe src="https://notify.bashtel.ru/block-rkn/"></iframe>',
    "http://zapret.iks.ru/",
    '<meta http-equiv="refresh" content="0;URL=http://flex.ru/zapret.html">',
    "http://blacklist.schelkovo-net.ru/?url=example.org",
    "http://block.tk-miran.ru/block.php?url=example.org",
    "http://blacklist.miralogic.ru/",
    "http://block.kvant-telecom.ru/",
    "http://176.114.16.100/block_url.html",
    "http://vasexperts.ru/test/blocked.php",
    # ---- Belarus
    "https://www.a1.by/mininfo/",
    '<link rel="stylesheet" href="https://www.velcom.by/mininfo/css/main.css">',
    "http://82.209.230.23/",
    "https://internet.mts.by/blocked/",
    # ---- South Korea
    '<iframe src="http://www.warning.or.kr/i1.html"></iframe>',
    # ---- Indonesia
    "This page is blocked by <a href=http://trustpositif.kominfo.go.id>TrustPositif</a>",
    "http://internet-positif.org/",
    "http://internetpositif.uzone.id/?lokasi=blocked",
    "http://mercusuar.uzone.id/",
    '<a href="http://block.uzone.id">',
    '<img src="http://internetpositif.uzone.id/assets/internetpositif/logo.png">',
    'window.location.replace("http://internetpositif.uzone.id/page");',
    "http://lamanlabuh.aduankonten.id/",
    '<a href="mailto:di.og.ofnimok@netnoknauda">',
    "<title>Internet Positif</title>",
    "<title>Internet Positif - Indonesia</title>",
    "<p>Situs ini tidak bisa diakses melalui jaringan ini sesuai peraturan perundang-undangan.</p>",
    "<p>Situs yang dituju terindikasi mengandung konten yang tidak diperkenankan pemerintah.</p>",
    "We are blocking this abusive site as stated by the Indonesia regulation in order to "
    "provide Internet Sehat.",
    "https://internetbaik.telkomsel.com/block?url=example.org",
    '<meta name="keywords" content="telkomsel|internet sehat|baik|internet baik">',
    "<title>Indosatooredoo Netsafe</title>",
    "<title>Netsafe IndosatM2</title>",
    '<a href="http://netsafe.indosatooredoo.com/desktop">',
    "http://114.6.128.7/",
    "<p>Situs ini mengandung konten negatif sesuai dengan Peraturan Menteri Kominfo No 19 "
    "Tahun 2014</p>",
    "https://blockpage.xl.co.id/",
    '<iframe src="http://www.xl.co.id/xlblockpage"></iframe>',
    "https://blockpage.xlaxiata.id/",
    "<p>which is not permitted by goverment regulation.</p>",
    "http://restricted.tri.co.id/",
    "http://internetpositif.mncplaymedia.com/",
    '<a href="http://www.firstmedia.com/internetsehatdanamanfastnet.html">',
    "<script>var pname='internet-sehat';</script>",
    "<title>FastNet | Internet Sehat dan Aman</title>",
    "http://xblock.gmedia.net.id/",
    "http://filter.citra.net.id/",
    "<h2>INTERNET SEHAT CITRANET</h2>",
    "http://block.myrepublic.co.id/",
    '<iframe src="http://www.biznetnetworks.com/safesurf/"></iframe>',
    '<meta http-equiv="refresh" content="0; URL=http://sehat.hypernet.co.id">',
    "http://www.melsa.net.id/main/blocked",
    '<iframe src="http://block.utaramedia.net/"></iframe>',
    "https://trustpositif.iforte.net.id/",
    "<title>Block Page - CBN Internet</title>",
    # ---- Thailand
    "https://illegal.mdes.go.th/",
    "<p>Sorry. Access to this website has been disabled because the Ministry of Digital "
    "Economic and Society</p>",
    "http://103.86.50.16/",
    '<iframe src="http://103.208.24.21/?accessurl=aHR0cDovL2V4YW1wbGUub3JnLw=="></iframe>',
    "http://prohibit.ais-idc.com/prohibit.html",
    '<iframe src="http://124.40.225.20/?accessurl=aHR0cDovL2V4YW1wbGUub3JnLw=="></iframe>',
    "The Ministry of Information and Communication Technology has temporarily ceased the "
    "service to access such kind of information.",
    "<span>An  access to such information has been temporarily ceased </span>",
    '<center> <img src="ict.jpg"> </center>',
    '<center> <img src="./Redirecting_files/ict.jpg"> </center>',
    "<title>Tcsd.info</title>",
    "http://redir.csloxinfo.com/court.html",
    # ---- Myanmar
    "You have tried to access a web page which has been blocked as per directive received from "
    "the Ministry of Transport and Communications of Myanmar.",
    "http://notice.myanmarnet.com/",
    # ---- Pakistan
    "This URL has been blocked under instructions of a competent authority and is prohibited "
    "for viewership from within Pakistan.",
    '<iframe src="http://119.73.65.87:8080/redirect.html?accessurl=aHR0cDovL2V4YW1wbGUu">',
    "http://redirect.wi-tribe.net.pk/alert/",
    "http://restrict.wateen.net/",
    '<iframe src="http://restrictk.wateen.net/"></iframe>',
    # ---- India
    '<iframe src="http://www.airtel.in/dot/?dpid=1&dpruleid=3&cat=105"></iframe>',
    "http://www.airtel.in/court-orders/",
    "<span>The URL has been blocked as per the instructions of the DoT in compliance to the "
    "orders of Court of Law</span>",
    "The access to this site is prohibited as per instructions from Authority(s)/Honorable "
    "Court Order",
    "<H1>Access Denied as per DOT/TRAI Guidelines - By Order </H1>",
    "This website has been blocked as per instructions from Department of Telecommunications "
    "of India.",
    "Your requested URL has been blocked as per the directions received from Department of "
    "Telecommunications, Government of India.",
    "<small>The website/domain has been blocked as per order of Ministry of Electronics and "
    "Information Technology under IT Act, 2000</small>",
    '<h2><font color="red">This site has been blocked as per the instructions of Competent '
    "Authority</font> </h2>",
    # ---- Nepal
    '<a href="https://nta.gov.np/en/notice-regarding-site-block">',
    "<title>Block By NTA</title>",
    "The access to this website has been restricted as per the directive of Nepal "
    "Telecommunications Authority.",
    "<h1>This web site has been blocked as per NTA's policy</h1>",
    "<h1>This web site has been blocked as per NTA&rsquo;s policy</h1>",
    "http://blockdomain.worldlink.com.np/",
    # ---- Uzbekistan
    "http://reestr.mitc.uz/",
    # ---- Saudi Arabia
    "If you believe the requested page should not be blocked please click here "
    '<a href="http://www.internet.gov.sa/resources/block-unblock-request">',
    "Sorry, the requested page is violating the regulations of the Kingdom of Saudi Arabia",
    '<iframe src="http://blocking-web-server.isu.net.sa/"></iframe>',
    # ---- United Arab Emirates, Bahrain, Kuwait, Oman, Qatar
    '<iframe src="http://proxy.etisalat.ae/?dpid=1&dpruleid=2"></iframe>',
    "http://lighthouse.du.ae?dpid=3&dpruleid=4&cat=10&url=example.org",
    "http://www.anonymous.com.bh/",
    '<iframe src="http://www.viva.com.bh/static/block"></iframe>',
    '<iframe src="http://www.menatelecom.com/deny_page.html"></iframe>',
    "http://restrict.kw.zain.com:8080/webadmin/deny/index.php?dpid=11",
    '<iframe src="http://blocked.fasttelco.net/?dpid=6&dpruleid=3"></iframe>',
    '<img src="http://pay.viva.com.kw/images/access-en.jpg">',
    "http://blocked.kems.net/",
    '<iframe src="http://www.block.om/newrequestform.aspx?accessurl=aHR0cDovL2V4YW1wbGU=">',
    '<iframe src="http://siteblocked.om/?accessurl=aHR0cDovL2V4YW1wbGU="></iframe>',
    '<iframe src="http://censor.qa/?accessurl=aHR0cDovL2V4YW1wbGU="></iframe>',
    '<iframe src="http://www.censor.qa/?dpid=2&dpruleid=4"></iframe>',
    "http://www.vodafone.qa/alu.cfm",
    # ---- Sudan, Yemen
    "http://196.1.211.6:8080/alert/",
    "http://196.29.164.27/ntc/ntcblock.html",
    '<iframe src="http://196.29.164.30/webadmin/deny/ptra/blocking.html"></iframe>',
    '<iframe src="http://82.114.160.94/webadmin/deny/index.php?dpid=1"></iframe>',
    '<iframe src="http://deny.yemen.net.ye/webadmin/deny/index.php?dpid=1"></iframe>',
]

#: Ordinary pages and redirects: the messengers' own, the ISPs' home pages, captive-portal
#: texts, legal footers, generic error pages (some are Censored Planet's known false
#: positives, cp.fp_*) and news that names the censors, their laws and their host names.
ORDINARY: list[str] = [
    # messengers
    "<!doctype html><html><head><title>Telegram Web</title></head><body></body></html>",
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Telegram Messenger'
    '</title><meta property="og:url" content="https://telegram.org/">',
    "<title>WhatsApp Web</title><script>window.location.replace('https://web.whatsapp.com/');"
    "</script>",
    '<html><head><title>Signal >> Home</title><link rel="canonical" href="https://signal.org/">',
    '{"error":"Not Found","code":404}',
    "HTTP/1.1 302 Found\r\nLocation: https://web.telegram.org/k/\r\n\r\n",
    "https://web.telegram.org/a/",
    "https://www.facebook.com/messages/",
    "https://web.whatsapp.com/ https://signal.org/ https://www.facebook.com/",
    "<title>Example Domain</title><p>This domain is for use in illustrative examples.</p>",
    # ISPs' home pages, help and billing pages
    '<title>Ростелеком — интернет, ТВ и связь</title><a href="https://rt.ru/">',
    "https://www.rt.ru/ https://www.mgts.ru/ https://tele2.ru/ https://msk.tele2.ru/",
    "https://www.mts.ru/personal/mobilnaya-svyaz/ https://moskva.beeline.ru/customers/",
    "https://moscow.megafon.ru/ https://megafonpro.ru/ https://dom.ru/ https://www.akado.ru/",
    '<a href="https://www.beeline.ru/customers/help/">Помощь</a>',
    "<p>ОАО «КОМКОР». Россия, 117535, г. Москва, Варшавское шоссе, д. 133.</p>",
    '<a href="https://lk.ufanet.ru/">Личный кабинет</a> https://www.ufanet.ru/',
    '<a href="mailto:support@k-telecom.org">support@k-telecom.org</a> https://www.yota.ru/',
    "http://www.teleseti.com/ https://www.divo.ru/ http://www.telemagadan.ru/",
    "https://www.a1.by/ru/ https://beltelecom.by/ https://help.mts.by/hc/ru/requests/new",
    "https://www.telkomsel.com/ https://ioh.co.id/ https://www.xl.co.id/ https://www.biznet.id/",
    "https://myrepublic.co.id/ https://www.firstmedia.com/ https://www.citra.net.id/",
    "https://www.airtel.in/ https://www.jio.com/ https://www.worldlink.com.np/",
    "https://www.kominfo.go.id/ https://www.mdes.go.th/ https://www.etisalat.ae/ https://www.du.ae/",
    "https://www.batelco.com/ https://www.viva.com.bh/ https://www.kw.zain.com/en/",
    "https://www.omantel.om/ https://www.ooredoo.qa/ https://www.vodafone.qa/en/",
    "https://www.etisalat.eg/ https://www.sudani.sd/ https://www.yemen.net.ye/",
    "https://www.myanmarnet.com/ https://www.ptcl.com.pk/ https://www.nayatel.com/",
    "https://www.vodafone.qa/alu.cfm?lang=ar",
    "http://82.209.230.234/",
    "http://example.org/?next=http://103.86.50.16/",
    "http://m.megafon.ru/ https://example.org/?ref=http://m.megafonpro.ru/",
    "http://www.telekom.uz/ https://mitc.uz/ru",
    "<title>Wi-Fi в метро — MT_FREE</title><p>Авторизуйтесь, чтобы продолжить</p>",
    "<title>Your balance is exhausted</title><p>Top up to continue browsing.</p>",
    # legal footers
    "<footer>Yer sağlanan içerikler hakkında 5651 sayılı Kanun kapsamında bildirimlerinizi "
    "iletişime geçerek iletebilirsiniz.</footer>",
    "<title>Yasal Uyarı</title><p>Bu sitedeki içerik 5651 sayılı Kanun'a tabidir.</p>",
    '<p>Обработка персональных данных в соответствии с <a href="http://graph.document.'
    'kremlin.ru/page.aspx?1;1181520">Федеральным законом № 152-ФЗ</a>.</p>',
    "<p>Согласно Федеральному закону от 27.07.2006 № 149-ФЗ «Об информации, информационных "
    "технологиях и о защите информации».</p>",
    "<p>Laporkan konten negatif ke aduankonten@kominfo.go.id. Internet Sehat dan Aman!</p>",
    # news that names the censors, their hosts and laws in prose
    "Iran's filter answers 10.10.34.34 for blocked names; see the report on internet.ir/about.",
    "Iranian users who open a blocked site are sent to peyvandha.ir, the filter's portal.",
    "Roskomnadzor (rkn.gov.ru) ordered ISPs to block Telegram in April 2018; the register at "
    "eais.rkn.gov.ru lists the addresses.",
    "In Russia, MTS subscribers are sent to blocked.mts.ru, Tele2's to t2blocked.com and "
    "Dom.ru's to lawfilter.ertelecom.ru; Beeline uses blackhole.beeline.ru, Rostelecom "
    "warning.rt.ru.",
    "Korean users see warning.or.kr; Indonesians can check a site at "
    "trustpositif.kominfo.go.id; Thais are shown illegal.mdes.go.th.",
    "UAE users see proxy.etisalat.ae or lighthouse.du.ae; Bahrain's anonymous.com.bh, "
    "Qatar's censor.qa and Oman's block.om are the Gulf's blockpages.",
    "Mahkeme kararıyla erişime engellendi: site, Sulh Ceza Hakimliği kararıyla kapatıldı.",
    "<title>Mercusuar - Berita Sulawesi Tengah</title>",
    "Korea Communications Standards Commission, kocsc.or.kr",
    # generic and blocked-looking pages that name no censor
    "<title>Website Blocked</title><p>This page has been blocked. Access denied.</p>",
    "<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1></body></html>",
    "<title>Access denied | example.com used Cloudflare to restrict access</title>",
    "Checking your browser before accessing example.com. Ray ID: 7d1f2e3a4b5c6d7e",
    "<h1>Not Found</h1><p>The page you're looking for could not be found.</p>",
    "<header><title>404 Page</title></header>\n<body>\n<p>Sorry!</p>",
    "<html><body><h1>It works!</h1></body></html>",
    "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>",
    "<title>Index of /</title>",
    "<p>451 Unavailable For Legal Reasons</p>",
    '<img src="/images/mdes.jpg" alt="Ministry of Digital Economy and Society">',
]

#: Header values of the blockpages in DEFAULT_BLOCKPAGE_HEADERS, by lower-case name.
HEADER_BLOCKPAGES: list[tuple[str, str]] = [
    ("server", "Protected by WireFilter 8 (SA1)"),
    ("server", "Protected by WireFilter"),
]

#: Ordinary response headers, including the messengers' and the ISPs' own.
ORDINARY_HEADERS: list[tuple[str, str]] = [
    ("server", "nginx"),
    ("server", "nginx/1.25.3"),
    ("server", "cloudflare"),
    ("server", "Apache/2.4.57 (Debian)"),
    ("server", "proxygen-bolt"),
    ("server", "Microsoft-IIS/10.0"),
    ("server", "AmazonS3"),
    ("server", "gws"),
    ("server", "openresty"),
    ("via", "1.1 varnish, 1.1 google"),
    ("set-cookie", "stel_ssid=3b1c5a; expires=Fri, 01 Jan 2027 00:00:00 GMT; path=/; HttpOnly"),
    ("set-cookie", "wa_lang_pref=en; Domain=.whatsapp.com; Path=/; Secure"),
    ("set-cookie", "__cf_bm=abc; path=/; expires=Fri, 01 Jan 2027 00:00:00 GMT; Secure"),
    ("x-frame-options", "SAMEORIGIN"),
    ("content-type", "text/html; charset=windows-1251"),
]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")  # RFC 9110 token, lower case


def test_addresses_are_in_normal_form() -> None:
    assert DEFAULT_BLOCKPAGE_ADDRESSES
    for address in DEFAULT_BLOCKPAGE_ADDRESSES:
        assert str(ipaddress.ip_address(address)) == address


def test_addresses_hold_the_documented_injections() -> None:
    assert {
        # Iran (IPv4 and IPv6), Turkey
        "10.10.34.34",
        "10.10.34.35",
        "10.10.34.36",
        "d0::11",
        "195.175.254.2",
        # Russia: ER-Telecom, Rostelecom
        "5.3.3.17",
        "95.167.13.50",
        # China
        "8.7.198.45",
        "159.106.121.75",
        "203.98.7.65",
        # Belarus, Myanmar, Thailand, Indonesia
        "134.17.0.7",
        "103.105.174.6",
        "125.26.170.3",
        "139.255.196.196",
    } <= DEFAULT_BLOCKPAGE_ADDRESSES


def test_addresses_skip_clouds_and_generic_answers() -> None:
    # AWS Global Accelerator (WhatsApp's edge uses the same pool), DigitalOcean, and answers
    # any resolver may give
    for address in ("75.2.41.216", "99.83.188.13", "167.172.4.60", "0.0.0.0", "127.0.0.1"):
        assert address not in DEFAULT_BLOCKPAGE_ADDRESSES


def test_patterns_are_distinct_and_never_match_everything() -> None:
    assert len(set(DEFAULT_BLOCKPAGE_PATTERNS)) == len(DEFAULT_BLOCKPAGE_PATTERNS)
    for pattern in PATTERNS:
        assert pattern.search(b"") is None, pattern.pattern


@pytest.mark.parametrize("page", BLOCKPAGES)
def test_every_blockpage_sample_is_recognised(page: str) -> None:
    assert any(p.search(page.encode()) for p in PATTERNS)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.pattern.decode()[:40])
def test_every_pattern_recognises_a_blockpage(pattern: re.Pattern[bytes]) -> None:
    assert any(pattern.search(page.encode()) for page in BLOCKPAGES)


@pytest.mark.parametrize("page", ORDINARY)
def test_ordinary_pages_are_not_blockpages(page: str) -> None:
    matches = [p.pattern for p in PATTERNS if p.search(page.encode())]
    assert matches == []


def test_windows_1251_pages_still_match() -> None:
    page = (
        '<html><head><meta charset="windows-1251"><title>Доступ ограничен</title></head>'
        '<body><a href="http://blocklist.rkn.gov.ru/">Реестр</a></body></html>'
    ).encode("cp1251")
    assert any(p.search(page) for p in PATTERNS)


@pytest.mark.parametrize(
    ("value", "blocked"),
    [
        ("http://82.209.230.23/", True),
        ("http://82.209.230.231/", False),  # an address is not the prefix of another
        ("http://103.86.50.16/", True),
        ("http://example.org/?r=http://103.86.50.16/", False),  # anchored prefix
        ("http://www.vodafone.qa/alu.cfm", True),
        ("http://www.vodafone.qa/alu.cfm?x=1", False),  # anchored full value
        ("http://196.1.211.6:8080/alert/", True),
        ("http://196.1.211.6:8080/alert/other", False),
    ],
)
def test_location_values_are_anchored(value: str, blocked: bool) -> None:
    assert any(p.search(value.encode()) for p in PATTERNS) is blocked


def test_header_names_are_lower_case_tokens_but_never_location() -> None:
    assert isinstance(DEFAULT_BLOCKPAGE_HEADERS, MappingProxyType)
    assert DEFAULT_BLOCKPAGE_HEADERS
    for name, patterns in DEFAULT_BLOCKPAGE_HEADERS.items():
        assert _TOKEN.fullmatch(name), name
        assert name != "location"
        assert isinstance(patterns, tuple)
        assert patterns
        assert len(set(patterns)) == len(patterns)


@pytest.mark.parametrize(
    "pattern",
    [p for ps in HEADER_PATTERNS.values() for p in ps],
    ids=lambda p: p.pattern.decode()[:40],
)
def test_header_patterns_are_well_formed(pattern: re.Pattern[bytes]) -> None:
    assert pattern.search(b"") is None


@pytest.mark.parametrize(("name", "value"), HEADER_BLOCKPAGES)
def test_every_blockpage_header_is_recognised(name: str, value: str) -> None:
    assert any(p.search(value.encode("latin-1")) for p in HEADER_PATTERNS[name])


def test_every_header_pattern_recognises_a_blockpage_header() -> None:
    for name, patterns in HEADER_PATTERNS.items():
        for pattern in patterns:
            values = [v.encode("latin-1") for n, v in HEADER_BLOCKPAGES if n == name]
            assert any(pattern.search(v) for v in values), (name, pattern.pattern)


@pytest.mark.parametrize(("name", "value"), ORDINARY_HEADERS)
def test_ordinary_headers_are_not_blockpages(name: str, value: str) -> None:
    matches = [p.pattern for p in HEADER_PATTERNS.get(name, []) if p.search(value.encode())]
    assert matches == []


@pytest.mark.parametrize(("name", "value"), ORDINARY_HEADERS)
def test_ordinary_header_values_are_not_body_blockpages(name: str, value: str) -> None:
    # a value that reaches the body or Location patterns (a redirect) must not match either
    assert not [p.pattern for p in PATTERNS if p.search(value.encode())]
