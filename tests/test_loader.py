"""exporter.config.loader: YAML → Config, or every error at once."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest

from exporter.config.blocklists.addresses import DEFAULT_BLOCKPAGE_ADDRESSES
from exporter.config.blocklists.pages import DEFAULT_BLOCKPAGE_HEADERS, DEFAULT_BLOCKPAGE_PATTERNS
from exporter.config.loader import (
    ConfigError,
    ConfigErrors,
    load,
    parse,
    parse_duration,
    parse_yaml,
)
from exporter.config.matrix import expand, skipped
from exporter.config.model import (
    CANARY_SERVICE,
    DEFAULT_BODY_LIMIT,
    DEFAULT_CHECKS,
    DEFAULT_EXPECT_STATUS,
    Check,
    IdentityCheck,
    Localisation,
    Network,
    Proxy,
    Resolver,
    ResolverType,
    StatusRange,
    TlsOptions,
)

REPO = Path(__file__).resolve().parent.parent

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

#: A minimal valid services block, for cases about the other keys.
SERVICES = """
services:
  s:
    endpoints:
      e: {host: example.org, port: 443}
"""


def y(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def error_lines(text: str | bytes) -> set[str]:
    with pytest.raises(ConfigErrors) as info:
        parse_yaml(text)
    lines = str(info.value).split("\n")
    assert len(lines) == len(info.value.errors)
    return set(lines)


# --------------------------------------------------------------------------------------------
# Bad configs → exact error lines

BAD: list[tuple[str, str, set[str]]] = [
    # ---- top level
    (
        "unknown-top-key",
        "intervall: 10s\n" + SERVICES,
        {
            "intervall: unknown key (allowed: interval, timeout, concurrency, ip_families, "
            "resolvers, networks, services, canaries, control_sni, blockpage_addresses, "
            "blockpage_patterns, blockpage_headers, throttling, metrics, localisation)"
        },
    ),
    (
        "interval-not-a-string",
        "interval: 12\n" + SERVICES,
        {"interval: expected a duration like 500ms, 10s, 2m, got 12"},
    ),
    (
        "interval-bad-unit",
        "interval: 12x\n" + SERVICES,
        {
            'interval: invalid duration "12x": expected a number and a unit (h, m, s, ms) '
            "like 500ms, 10s, 2m, 1h, 1m30s"
        },
    ),
    (
        "interval-zero",
        "interval: 0s\n" + SERVICES,
        {'interval: must be more than 0, got "0s"'},
    ),
    (
        "timeout-longer-than-interval",
        "interval: 10s\ntimeout: 30s\n" + SERVICES,
        {"timeout: must not be longer than interval (30s > 10s)"},
    ),
    (
        "timeout-null",
        "timeout:\n" + SERVICES,
        {"timeout: expected a duration like 500ms, 10s, 2m, got null"},
    ),
    (
        "concurrency",
        "concurrency: 0\n" + SERVICES,
        {"concurrency: expected an integer of at least 1, got 0"},
    ),
    (
        "concurrency-bool",
        "concurrency: true\n" + SERVICES,
        {"concurrency: expected an integer of at least 1, got true"},
    ),
    (
        "ip-families-empty",
        "ip_families: []\n" + SERVICES,
        {"ip_families: must not be empty (a list of IP families like [4] or [4, 6])"},
    ),
    (
        "ip-families-scalar",
        "ip_families: 4\n" + SERVICES,
        {"ip_families: expected a list of IP families like [4] or [4, 6], got 4"},
    ),
    (
        "ip-families-bad-and-duplicate",
        "ip_families: [4, 5, 4]\n" + SERVICES,
        {"ip_families[1]: expected 4 or 6, got 5", "ip_families[2]: 4 is listed twice"},
    ),
    (
        "top-level-list",
        "- a\n- b\n",
        {"<top level>: expected a mapping of keys like interval, services, got a list"},
    ),
    (
        "empty-document",
        "# nothing\n",
        {"<top level>: the config is empty; it needs at least services:"},
    ),
    (
        "services-missing",
        "interval: 10s\n",
        {"services: missing required key (a mapping of services to probe)"},
    ),
    (
        "services-empty",
        "services: {}\n",
        {"services: must define at least one service"},
    ),
    (
        "resolvers-empty",
        "resolvers: {}\n" + SERVICES,
        {"resolvers: must define at least one resolver (omit it for the system one)"},
    ),
    (
        "networks-empty",
        "networks: {}\n" + SERVICES,
        {"networks: must define at least one network (omit it for default: {})"},
    ),
    # ---- names
    (
        "bad-names",
        y(
            """
            resolvers:
              Google: {type: udp, address: 8.8.8.8}
              none: {type: system}
            networks:
              "-x": {}
            services:
              my service:
                endpoints:
                  no: {host: example.org, port: 443}
                  ok: {host: example.org, port: 443}
            """
        ),
        {
            'resolvers.Google: invalid resolver name "Google": use lowercase letters, digits, '
            "'_', '.' and '-', starting with a letter or digit (names are Prometheus label "
            "values)",
            'resolvers.none: the resolver name "none" is reserved (it labels endpoints given '
            "by address, which skip DNS)",
            'networks.-x: invalid network name "-x": use lowercase letters, digits, '
            "'_', '.' and '-', starting with a letter or digit (names are Prometheus label "
            "values)",
            'services.my service: invalid service name "my service": use lowercase letters, '
            "digits, '_', '.' and '-', starting with a letter or digit (names are Prometheus "
            "label values)",
            "services.my service.endpoints.false: an endpoint name must be a string, got false "
            "(quote it)",
        },
    ),
    # ---- resolvers
    (
        "resolver-type-missing-and-bad",
        y(
            """
            resolvers:
              a: {address: 8.8.8.8}
              b: {type: dns, address: 8.8.8.8}
            """
        )
        + SERVICES,
        {
            "resolvers.a.type: missing required key (one of system, udp, tcp, dot, doh, doq, doh3)",
            'resolvers.b.type: expected one of system, udp, tcp, dot, doh, doq, doh3, got "dns"',
        },
    ),
    (
        "resolver-unknown-key",
        "resolvers:\n  a: {type: udp, adress: 8.8.8.8}\n" + SERVICES,
        {
            "resolvers.a.adress: unknown key (allowed: type, address, port, server_name, url, tls, "
            "silent, identity)",
            "resolvers.a.address: missing required key for type udp (the resolver's IP address)",
        },
    ),
    (
        "system-with-address-and-port",
        "resolvers:\n  sys: {type: system, address: 1.1.1.1, port: 53}\n" + SERVICES,
        {
            "resolvers.sys.address: not allowed for type system (it uses the nameservers of "
            "the host's resolv.conf)",
            "resolvers.sys.port: not allowed for type system (it uses the nameservers of the "
            "host's resolv.conf)",
        },
    ),
    (
        "udp-bad-address-and-port",
        "resolvers:\n  a: {type: udp, address: 8.8.8, port: 70000}\n" + SERVICES,
        {
            "resolvers.a.address: expected an IP address like 192.0.2.1 or 2001:db8::1, "
            'got "8.8.8"',
            "resolvers.a.port: 70000 is not a port (1-65535)",
        },
    ),
    (
        "udp-with-tls-keys",
        y(
            """
            resolvers:
              a: {type: tcp, address: 8.8.8.8, server_name: dns.google, tls: {}, url: "https://x/"}
            """
        )
        + SERVICES,
        {
            "resolvers.a.server_name: not allowed for type tcp (only for dot, doh, doq, doh3)",
            "resolvers.a.tls: not allowed for type tcp (only for dot, doh, doq, doh3)",
            "resolvers.a.url: not allowed for type tcp (only for doh, doh3)",
        },
    ),
    (
        "dot-doq-need-server-name",
        y(
            """
            resolvers:
              a: {type: dot, address: 1.1.1.1}
              b: {type: doq}
            """
        )
        + SERVICES,
        {
            "resolvers.a.server_name: missing required key for type dot: the name in the "
            "server's certificate (or set tls.insecure_skip_verify: true)",
            "resolvers.b.server_name: missing required key for type doq: the name in the "
            "server's certificate (or set tls.insecure_skip_verify: true)",
            "resolvers.b.address: missing required key for type doq (the resolver's IP address)",
        },
    ),
    (
        "dot-two-server-names",
        y(
            """
            resolvers:
              a:
                type: dot
                address: 1.1.1.1
                server_name: a.example
                tls: {server_name: b.example}
            """
        )
        + SERVICES,
        {"resolvers.a.tls.server_name: give only one of server_name and tls.server_name"},
    ),
    (
        "doh-url-problems",
        y(
            """
            resolvers:
              plain: {type: doh, url: "http://1.1.1.1/dns-query"}
              nohost: {type: doh, url: "https:///dns-query"}
              byname: {type: doh, url: "https://cloudflare-dns.com/dns-query"}
              withport: {type: doh, url: "https://1.1.1.1/dns-query", port: 8443}
              nourl: {type: doh, address: 1.1.1.1}
              badport: {type: doh, url: "https://1.1.1.1:99999/dns-query"}
            """
        )
        + SERVICES,
        {
            'resolvers.plain.url: must be an https:// URL, got "http://1.1.1.1/dns-query"',
            'resolvers.nohost.url: the URL "https:///dns-query" has no host',
            "resolvers.byname.address: required for type doh when the url host "
            '"cloudflare-dns.com" is not an IP address: the exporter does not resolve a DoH '
            "server through another resolver, so give the IP address to dial",
            "resolvers.withport.port: not allowed for type doh (put the port in the url: "
            "https://host:port/path)",
            "resolvers.nourl.url: missing required key for type doh (like "
            "https://1.1.1.1/dns-query)",
            'resolvers.badport.url: invalid URL "https://1.1.1.1:99999/dns-query": Port out '
            "of range 0-65535",
        },
    ),
    # ---- networks
    (
        "network-keys",
        y(
            """
            networks:
              a: {source_address: 192.0.2.300, interface: averyveryverylongname, netns: a/b}
              b: {srouce_address: 192.0.2.1}
              c: []
            """
        )
        + SERVICES,
        {
            "networks.a.source_address: expected an IP address like 192.0.2.1 or 2001:db8::1, "
            'got "192.0.2.300"',
            'networks.a.interface: "averyveryverylongname" is longer than 15 characters '
            "(Linux IFNAMSIZ)",
            "networks.a.netns: \"a/b\" is not a namespace name (letters, digits, '_', '.', '-')",
            "networks.b.srouce_address: unknown key (allowed: source_address, interface, proxy, "
            "netns)",
            "networks.c: expected a mapping of network options (or {}), got a list",
        },
    ),
    (
        "proxy-urls",
        y(
            """
            networks:
              http: {proxy: "http://127.0.0.1:8080"}
              name: {proxy: "socks5://proxy.example:1080"}
              noport: {proxy: "socks5://127.0.0.1"}
              s4auth: {proxy: "socks4://user:secret@127.0.0.1:1080"}
              nopass: {proxy: "socks5://user@127.0.0.1:1080"}
              path: {proxy: "socks5://u:secret@127.0.0.1:1080/x"}
              socks5h: {proxy: "socks5h://127.0.0.1:9050"}
              v6src: {source_address: "2001:db8::1", proxy: "socks5://127.0.0.1:9050"}
            """
        )
        + SERVICES,
        {
            'networks.http.proxy: unsupported proxy scheme "http": use socks5 or socks4',
            'networks.name.proxy: the proxy host "proxy.example" must be an IP address or '
            "localhost",
            "networks.noport.proxy: the proxy URL needs a port (1-65535): expected a URL like "
            "socks5://127.0.0.1:9050, socks5://user:pass@127.0.0.1:1080",
            "networks.s4auth.proxy: socks4 takes no credentials; use socks5://user:pass@host:port",
            "networks.nopass.proxy: proxy credentials must be user:password, both non-empty",
            "networks.path.proxy: a proxy URL has no path, query or fragment: expected a URL "
            "like socks5://127.0.0.1:9050, socks5://user:pass@127.0.0.1:1080",
            'networks.socks5h.proxy: unsupported proxy scheme "socks5h": use socks5 or socks4 '
            "(names are always resolved by the exporter, through the resolver under test)",
            "networks.v6src.source_address: 2001:db8::1 and the proxy host 127.0.0.1 are of "
            "different IP families: the connection to the proxy cannot bind this address",
        },
    ),
    # ---- the matrix
    (
        # Pairs a network cannot carry are left out of the matrix (test_matrix_leaves_out_
        # what_a_network_cannot_carry); only an endpoint left with none at all is an error.
        "nothing-can-be-asked-through-the-networks",
        y(
            """
            resolvers:
              system: {type: system}
              google: {type: udp, address: 8.8.8.8}
              google-tcp: {type: tcp, address: 8.8.8.8}
              adguard-doq: {type: doq, address: 94.140.14.140, server_name: dns.example}
            networks:
              default: {}
              tor: {proxy: "socks5://127.0.0.1:9050"}
            services:
              telegram:
                networks: [tor]
                endpoints:
                  web: {host: web.telegram.org, port: 443}
                  udp-only: {host: web.telegram.org, port: 443, resolvers: [system, google]}
                  dc2: {address: 149.154.167.51, port: 443}
            """
        ),
        {
            "services.telegram.endpoints.udp-only: no resolver of it can be asked through any "
            'of its networks ("google" through "tor": a SOCKS proxy carries only TCP (and 1 '
            "more)); add a resolver its networks can carry (tcp, dot or doh), or another network",
        },
    ),
    (
        "doh3-is-configured-like-doh-and-dialled-like-doq",
        y(
            """
            resolvers:
              ok: {type: doh3, url: "https://1.1.1.1/dns-query"}
              no-url: {type: doh3, address: 1.1.1.1}
              named: {type: doh3, url: "https://dns.example/dns-query"}
              port: {type: doh3, url: "https://1.1.1.1/dns-query", port: 8443}
            networks:
              wg0: {interface: wg0}
              tor: {proxy: "socks5://127.0.0.1:9050"}
            services:
              s:
                resolvers: [ok]
                endpoints:
                  e: {host: example.org, port: 443}
            """
        ),
        {
            "resolvers.no-url.url: missing required key for type doh3 (like "
            "https://1.1.1.1/dns-query)",
            'resolvers.named.address: required for type doh3 when the url host "dns.example" '
            "is not an IP address: the exporter does not resolve a DoH server through another "
            "resolver, so give the IP address to dial",
            "resolvers.port.port: not allowed for type doh3 (put the port in the url: "
            "https://host:port/path)",
            "services.s.endpoints.e: no resolver of it can be asked through any of its networks "
            '("ok" through "tor": a SOCKS proxy carries only TCP (and 1 more)); add a resolver '
            "its networks can carry (tcp, dot or doh), or another network",
        },
    ),
    # ---- services
    (
        "service-references",
        y(
            """
            resolvers:
              system: {type: system}
              google: {type: udp, address: 8.8.8.8}
              cloudflare-doh: {type: doh, url: "https://1.1.1.1/dns-query"}
            services:
              telegram:
                resolvers: [google, gogle, google]
                networks: [default, wg0]
                endpoints:
                  web: {host: web.telegram.org, port: 443, resolvers: []}
            """
        ),
        {
            'services.telegram.resolvers[1]: unknown resolver "gogle" (defined: '
            "cloudflare-doh, google, system)",
            'services.telegram.resolvers[2]: "google" is listed twice',
            'services.telegram.networks[1]: unknown network "wg0" (defined: default)',
            "services.telegram.endpoints.web.resolvers: must not be empty (omit it to use "
            "every resolver)",
        },
    ),
    (
        "service-shape",
        y(
            """
            services:
              a: {endpoint: {}}
              b: {endpoints: {}}
              c: [x]
            """
        ),
        {
            "services.a.endpoint: unknown key (allowed: endpoints, resolvers, networks, "
            "expected_networks, control_sni)",
            "services.a.endpoints: missing required key (a mapping of endpoints)",
            "services.b.endpoints: must define at least one endpoint",
            "services.c: expected a mapping with endpoints, got a list",
        },
    ),
    # ---- endpoints
    (
        "endpoint-basics",
        y(
            """
            services:
              telegram:
                endpoints:
                  web: {host: web.telegram.org, prot: 443, port: 70000}
                  nothing: {port: 443}
                  noport: {host: example.org}
                  ip-as-host: {host: 149.154.167.51, port: 443}
                  badaddr: {address: "149.154.167", port: "443"}
            """
        ),
        {
            "services.telegram.endpoints.web.prot: unknown key (allowed: host, address, port, "
            "checks, tls, http, resolvers, networks, ip_families, control_sni, throughput, quic, "
            "mtproto)",
            "services.telegram.endpoints.web.port: 70000 is not a port (1-65535)",
            "services.telegram.endpoints.nothing: needs host (a DNS name) or address (an IP "
            "address), or both",
            "services.telegram.endpoints.noport.port: missing required key (1-65535)",
            'services.telegram.endpoints.ip-as-host.host: "149.154.167.51" is an IP address; '
            "give it as address:",
            "services.telegram.endpoints.badaddr.address: expected an IP address like "
            '192.0.2.1 or 2001:db8::1, got "149.154.167"',
            'services.telegram.endpoints.badaddr.port: expected a port number (1-65535), got "443"',
        },
    ),
    (
        "endpoint-checks",
        y(
            """
            services:
              s:
                endpoints:
                  a: {host: example.org, port: 443, checks: [tcp, ping, tcp]}
                  b: {address: 192.0.2.1, port: 443, checks: [dns, tcp]}
                  c: {host: example.org, port: 443, checks: [tls, http]}
                  d: {host: example.org, port: 443, checks: []}
                  e: {host: example.org, port: 443, checks: dns}
            """
        ),
        {
            "services.s.endpoints.a.checks[1]: expected one of dns, tcp, tls, http, throughput, "
            'quic, stun, mtproto, got "ping"',
            "services.s.endpoints.a.checks[2]: tcp is listed twice",
            "services.s.endpoints.b.checks[0]: dns is not possible for an endpoint given by "
            "address (it is dialled directly); remove dns or address",
            "services.s.endpoints.c.checks: tls needs tcp (add tcp)",
            "services.s.endpoints.c.checks: http needs tcp (add tcp)",
            "services.s.endpoints.d.checks: must not be empty (a list of checks among dns, tcp, "
            "tls, http, throughput, quic, stun, mtproto)",
            "services.s.endpoints.e.checks: expected a list of checks among dns, tcp, tls, "
            'http, throughput, quic, stun, mtproto, got "dns"',
        },
    ),
    (
        "stun-and-mtproto",
        y(
            """
            services:
              s:
                endpoints:
                  a: {host: stun.example.org, port: 3478, checks: [stun, tcp, tls]}
                  b: {address: 192.0.2.1, port: 443, checks: [mtproto]}
                  c: {address: 192.0.2.1, port: 443, checks: [tcp, mtproto, http]}
                  d: {address: 192.0.2.1, port: 443, checks: [tcp], mtproto: {transport: x}}
                  e: {address: 192.0.2.1, port: 443, mtproto: {dc: 40000, obfuscate: true}}
            """
        ),
        {
            "services.s.endpoints.a.checks: stun goes only with dns, not with tcp, tls (give "
            "it an endpoint of its own)",
            "services.s.endpoints.b.checks: mtproto needs tcp (add tcp)",
            "services.s.endpoints.c.checks: mtproto goes only with dns and tcp, not with http "
            "(give it an endpoint of its own)",
            "services.s.endpoints.d.mtproto.transport: expected one of obfuscated, "
            'intermediate, got "x"',
            "services.s.endpoints.d.mtproto: MTProto options given but mtproto is not in checks",
            "services.s.endpoints.e.mtproto.dc: expected an integer from -32768 to 32767, "
            "got 40000",
            "services.s.endpoints.e.mtproto.obfuscate: unknown key (allowed: transport, dc)",
        },
    ),
    (
        "address-endpoint-restrictions",
        y(
            """
            services:
              s:
                endpoints:
                  a: {address: 192.0.2.1, port: 443, resolvers: [system], ip_families: [4]}
            """
        ),
        {
            "services.s.endpoints.a.resolvers: not allowed for an endpoint given by address "
            "(it skips DNS)",
            "services.s.endpoints.a.ip_families: not allowed for an endpoint given by address "
            "(its address sets the family)",
        },
    ),
    (
        "endpoint-families-and-networks",
        y(
            """
            services:
              s:
                endpoints:
                  a: {host: example.org, port: 443, ip_families: [6, 6], networks: [tor]}
            """
        ),
        {
            "services.s.endpoints.a.ip_families[1]: 6 is listed twice",
            'services.s.endpoints.a.networks[0]: unknown network "tor" (defined: default)',
        },
    ),
    (
        "options-without-their-check",
        y(
            """
            services:
              s:
                endpoints:
                  a: {host: example.org, port: 443, checks: [tcp], tls: {}, http: {}}
            """
        ),
        {
            "services.s.endpoints.a.tls: TLS options given but neither tls nor quic is in checks",
            "services.s.endpoints.a.http: HTTP options given but http is not in checks (nor "
            "quic with http3: true)",
        },
    ),
    # ---- tls
    (
        "tls-options",
        y(
            """
            services:
              s:
                endpoints:
                  a:
                    host: example.org
                    port: 443
                    tls:
                      ca_file: /nonexistent/ca.pem
                      extra_ca_file: /
                      server_name: "not a name"
                      insecure_skip_verify: "yes"
                      verify: false
            """
        ),
        {
            'services.s.endpoints.a.tls.ca_file: "/nonexistent/ca.pem" does not exist',
            'services.s.endpoints.a.tls.extra_ca_file: "/" is not a regular file',
            "services.s.endpoints.a.tls.server_name: expected a DNS name like example.org, "
            'got "not a name"',
            'services.s.endpoints.a.tls.insecure_skip_verify: expected true or false, got "yes"',
            "services.s.endpoints.a.tls.verify: unknown key (allowed: ca_file, extra_ca_file, "
            "server_name, insecure_skip_verify)",
        },
    ),
    # ---- http
    (
        "http-options",
        y(
            r"""
            services:
              s:
                endpoints:
                  a:
                    host: example.org
                    port: 443
                    http:
                      method: FETCH
                      path: index.html
                      expect_status: [200, 6xx, 99, "200"]
                      fail_if_body_matches: ["blocked", "(unclosed", "(denied)?", "^"]
                      headers: {X-Count: 1, "Bad Name": x}
                      body_limit: 32MiB
                  b:
                    host: example.org
                    port: 443
                    http: {body_limit: 1MB, expect_status: [], headers: [a], redirect: true}
            """
        ),
        {
            "services.s.endpoints.a.http.method: expected one of GET, HEAD, POST, PUT, OPTIONS, "
            'got "FETCH"',
            'services.s.endpoints.a.http.path: expected a path starting with /, got "index.html"',
            "services.s.endpoints.a.http.expect_status[1]: expected a status code 100-599 or "
            'a class 1xx-5xx, got "6xx"',
            "services.s.endpoints.a.http.expect_status[2]: expected a status code 100-599 or "
            "a class 1xx-5xx, got 99",
            "services.s.endpoints.a.http.expect_status[3]: expected a status code 100-599 or "
            'a class 1xx-5xx, got "200"',
            "services.s.endpoints.a.http.fail_if_body_matches[1]: invalid regular expression "
            '"(unclosed": missing ), unterminated subpattern at position 0',
            'services.s.endpoints.a.http.fail_if_body_matches[2]: "(denied)?" matches an empty '
            "body, so every response would match (expected a pattern that needs at least one "
            "character)",
            'services.s.endpoints.a.http.fail_if_body_matches[3]: "^" matches an empty '
            "body, so every response would match (expected a pattern that needs at least one "
            "character)",
            "services.s.endpoints.a.http.headers.X-Count: expected a string value, got 1 "
            "(quote it)",
            'services.s.endpoints.a.http.headers.Bad Name: invalid header name "Bad Name"',
            'services.s.endpoints.a.http.body_limit: "32MiB" is more than the maximum of 16MiB',
            "services.s.endpoints.b.http.redirect: unknown key (allowed: method, path, "
            "expect_status, fail_if_body_matches, headers, body_limit)",
            "services.s.endpoints.b.http.body_limit: expected a size in bytes or like 256KiB, "
            '1MiB (units B, KiB, MiB), got "1MB"',
            "services.s.endpoints.b.http.expect_status: must not be empty (a list of status "
            "codes or classes like 2xx)",
            "services.s.endpoints.b.http.headers: expected a mapping of header names to values, "
            "got a list",
        },
    ),  # ---- canaries
    (
        "canaries-shape",
        y(
            """
            resolvers:
              google: {type: udp, address: 8.8.8.8}
            canaries:
              example: {host: example.com, port: 443, resolvers: [google], networks: [default]}
              Bad: {host: example.org, port: 443}
              noport: {host: example.org}
            """
        )
        + SERVICES,
        {
            "canaries.example.resolvers: not allowed for a canary (canaries are probed on every "
            "network through every resolver)",
            "canaries.example.networks: not allowed for a canary (canaries are probed on every "
            "network through every resolver)",
            'canaries.Bad: invalid canary endpoint name "Bad": use lowercase letters, digits, '
            "'_', '.' and '-', starting with a letter or digit (names are Prometheus label "
            "values)",
            "canaries.noport.port: missing required key (1-65535)",
        },
    ),
    (
        "canaries-empty",
        "canaries: {}\n" + SERVICES,
        {"canaries: must define at least one canary (omit it for none)"},
    ),
    (
        "canaries-list",
        "canaries: [example.com]\n" + SERVICES,
        {"canaries: expected a mapping of canary endpoint names to canary endpoints, got a list"},
    ),
    (
        "service-named-canary",
        y(
            """
            services:
              canary:
                endpoints:
                  e: {host: example.org, port: 443}
            """
        ),
        {'services.canary: the service name "canary" is reserved for canaries:'},
    ),
    (
        "canary-through-a-proxy",
        y(
            """
            resolvers:
              google: {type: udp, address: 8.8.8.8}
            networks:
              tor: {proxy: "socks5://127.0.0.1:9050"}
            canaries:
              example: {host: example.com, port: 443}
              quad9: {address: 9.9.9.9, port: 443}
            services:
              s:
                endpoints:
                  e: {address: 192.0.2.1, port: 443}
            """
        ),
        {
            "canaries.example: no resolver of it can be asked through any of its networks "
            '("google" through "tor": a SOCKS proxy carries only TCP); canaries are probed on '
            "every network through every resolver: define a resolver every network can carry "
            "(tcp, dot or doh)"
        },
    ),
    # ---- silent and identity resolvers
    (
        "silent-resolvers",
        y(
            """
            resolvers:
              google: {type: udp, address: 8.8.8.8}
              nobody: {type: udp, address: 192.0.2.7, silent: true}
              dot: {type: dot, address: 1.1.1.1, server_name: one.one.one.one, silent: true}
              sys: {type: system, silent: false}
              tcp: {type: tcp, address: 8.8.8.8, silent: "yes"}
            services:
              s:
                resolvers: [nobody]
                endpoints:
                  e: {host: example.org, port: 443}
                  f: {host: example.org, port: 443, resolvers: [google, nobody]}
            """
        ),
        {
            "resolvers.dot.silent: not allowed for type dot (only for udp, tcp)",
            "resolvers.sys.silent: not allowed for type system (it uses the nameservers of the "
            "host's resolv.conf)",
            'resolvers.tcp.silent: expected true or false, got "yes"',
            'services.s.resolvers[0]: resolver "nobody" is silent: it runs no DNS server and '
            "only detects interception, so it cannot resolve endpoints",
            'services.s.endpoints.f.resolvers[1]: resolver "nobody" is silent: it runs no DNS '
            "server and only detects interception, so it cannot resolve endpoints",
        },
    ),
    (
        "every-resolver-silent",
        y(
            """
            resolvers:
              nobody: {type: udp, address: 192.0.2.7, silent: true}
            services:
              s:
                endpoints:
                  e: {host: example.org, port: 443}
                  by-address: {address: 192.0.2.1, port: 443}
            """
        ),
        {
            "services.s.endpoints.e: no resolver can resolve host: every resolver is silent "
            "(silent resolvers only detect interception); define one that answers DNS"
        },
    ),
    (
        "identity",
        y(
            """
            resolvers:
              a: {type: udp, address: 8.8.8.8, identity: {qname: o-o.myaddr.l.google.com}}
              b:
                type: udp
                address: 1.1.1.1
                identity: {qname: 1.2.3.4, qtype: txt, qclass: HS, expect: "(unclosed"}
              c: {type: doh, url: "https://1.1.1.1/dns-query", identity: {expect: "", name: x}}
              d: {type: udp, address: 9.9.9.9, identity: id.server}
            """
        )
        + SERVICES,
        {
            "resolvers.a.identity.expect: missing required key (a regular expression a "
            "truthful answer matches)",
            "resolvers.b.identity.qname: expected a DNS name like o-o.myaddr.l.google.com, "
            'got "1.2.3.4"',
            'resolvers.b.identity.qtype: expected one of TXT, A, AAAA, got "txt"',
            'resolvers.b.identity.qclass: expected one of IN, CH, got "HS"',
            'resolvers.b.identity.expect: invalid regular expression "(unclosed": missing ), '
            "unterminated subpattern at position 0",
            "resolvers.c.identity.name: unknown key (allowed: qname, qtype, qclass, expect)",
            "resolvers.c.identity.qname: missing required key (a DNS name like "
            "o-o.myaddr.l.google.com)",
            'resolvers.c.identity.expect: expected a regular expression, got ""',
            'resolvers.d.identity: expected a mapping with qname and expect, got "id.server"',
        },
    ),
    # ---- expected_networks
    (
        "expected-networks",
        y(
            """
            services:
              telegram:
                expected_networks:
                  - 149.154.167.0/20
                  - "2001:b28:f23d::/48"
                  - 149.154.160.0/20
                  - 149.154.160.0/20
                  - banana
                  - 42
                endpoints:
                  web: {host: web.telegram.org, port: 443}
              empty:
                expected_networks: []
                endpoints:
                  web: {host: web.telegram.org, port: 443}
            """
        ),
        {
            'services.telegram.expected_networks[0]: "149.154.167.0/20" has host bits set: the '
            "network is 149.154.160.0/20",
            "services.telegram.expected_networks[3]: 149.154.160.0/20 is listed twice",
            "services.telegram.expected_networks[4]: expected a network like 149.154.160.0/20 "
            'or 2001:db8::/32, got "banana"',
            "services.telegram.expected_networks[5]: expected a network like 149.154.160.0/20 "
            "or 2001:db8::/32, got 42",
            "services.empty.expected_networks: must not be empty (omit it when the service's "
            "ranges are not known)",
        },
    ),
    (
        "expected-networks-miss-a-family",
        y(
            """
            ip_families: [4, 6]
            services:
              telegram:
                expected_networks: [149.154.160.0/20]
                endpoints:
                  web: {host: web.telegram.org, port: 443}
                  v4: {host: web.telegram.org, port: 443, ip_families: [4]}
                  dc: {address: "2001:67c:4e8:f002::a", port: 443}
              v6only:
                expected_networks: ["2001:67c:4e8::/48"]
                endpoints:
                  a: {host: a.example, port: 443}
                  b: {host: b.example, port: 443}
                  c: {host: c.example, port: 443}
                  d: {host: d.example, port: 443}
            """
        ),
        {
            "services.telegram.expected_networks: has no IPv6 network, but endpoint web is "
            "probed over IPv6: every AAAA answer would be judged outside it (dns_tampered); add "
            "the service's IPv6 ranges or narrow ip_families",
            "services.v6only.expected_networks: has no IPv4 network, but endpoints a, b, c and 1 "
            "more are probed over IPv4: every A answer would be judged outside it "
            "(dns_tampered); add the service's IPv4 ranges or narrow ip_families",
        },
    ),
    # ---- control_sni
    (
        "control-sni",
        y(
            """
            control_sni: 192.0.2.1
            services:
              s:
                control_sni: "not a name"
                endpoints:
                  a: {host: example.org, port: 443, checks: [tcp], control_sni: example.com}
                  b: {host: example.org, port: 443, control_sni: EXAMPLE.org.}
                  c: {address: 192.0.2.1, port: 443, control_sni: example.com}
                  d: {host: example.org, port: 443, control_sni: 42}
                  e:
                    host: example.org
                    port: 443
                    tls: {server_name: www.example.org}
                    control_sni: www.example.org
            """
        ),
        {
            'control_sni: "192.0.2.1" is an IP address, which TLS never sends as SNI; give a '
            "DNS name",
            'services.s.control_sni: expected a DNS name like example.com, got "not a name"',
            "services.s.endpoints.a.control_sni: control_sni given but tls is not in checks",
            'services.s.endpoints.b.control_sni: "EXAMPLE.org." is the endpoint\'s own server '
            "name; a control must be another, innocuous name",
            "services.s.endpoints.c.control_sni: control_sni given but tls is not in checks",
            "services.s.endpoints.d.control_sni: expected a DNS name like example.com, got 42",
            'services.s.endpoints.e.control_sni: "www.example.org" is the endpoint\'s own '
            "server name; a control must be another, innocuous name",
        },
    ),
    # ---- blockpage lists
    (
        "blockpage-lists",
        y(
            r"""
            blockpage_addresses: [10.10.34.34, 10.10.34, "10.10.34.34", true]
            blockpage_patterns: ['(?i)peyvandha', "(unclosed", "", "x*", 42, '(?i)peyvandha']
            """
        )
        + SERVICES,
        {
            "blockpage_addresses[1]: expected an IP address like 192.0.2.1 or 2001:db8::1, "
            'got "10.10.34"',
            "blockpage_addresses[2]: 10.10.34.34 is listed twice",
            "blockpage_addresses[3]: expected an IP address like 192.0.2.1 or 2001:db8::1, "
            "got true",
            'blockpage_patterns[1]: invalid regular expression "(unclosed": missing ), '
            "unterminated subpattern at position 0",
            'blockpage_patterns[2]: expected a regular expression, got ""',
            'blockpage_patterns[3]: "x*" matches the empty string, so it would match every page',
            "blockpage_patterns[4]: expected a regular expression, got 42",
            'blockpage_patterns[5]: "(?i)peyvandha" is listed twice',
        },
    ),
    (
        "blockpage-lists-not-lists",
        "blockpage_addresses: 10.10.34.34\nblockpage_patterns: peyvandha\n" + SERVICES,
        {
            "blockpage_addresses: expected a list of IP addresses (or [] for none), got "
            '"10.10.34.34"',
            "blockpage_patterns: expected a list of regular expressions (or [] for none), got "
            '"peyvandha"',
        },
    ),
    (
        "blockpage-headers",
        y(
            """
            blockpage_headers:
              Server: ['^Protected by WireFilter', "(unclosed", ".*"]
              server: ['x']
              Location: ['blocked']
              "bad header": ['x']
              X-Filter: '^yes'
            """
        )
        + SERVICES,
        {
            'blockpage_headers.Server[1]: invalid regular expression "(unclosed": missing ), '
            "unterminated subpattern at position 0",
            'blockpage_headers.Server[2]: ".*" matches the empty string, so it would match '
            "every Server header",
            "blockpage_headers.server: header given twice (names are case-insensitive)",
            "blockpage_headers.Location: Location is matched by blockpage_patterns; list it there",
            'blockpage_headers.bad header: invalid header name "bad header"',
            "blockpage_headers.X-Filter: expected a list of regular expressions (or [] for "
            'none), got "^yes"',
        },
    ),
    (
        "localisation",
        y(
            """
            interval: 60s
            localisation: {enabled: maybe, max_hops: 0, concurrency: 65, interval: 30s,
                           timeout: soon, hops: 3}
            """
        )
        + SERVICES,
        {
            'localisation.enabled: expected true or false, got "maybe"',
            "localisation.max_hops: expected an integer from 1 to 64, got 0",
            "localisation.concurrency: expected an integer from 1 to 64, got 65",
            "localisation.interval: must not be shorter than the probe interval (30s < 60s): "
            "localisation runs at most once per network, address and port per interval",
            'localisation.timeout: invalid duration "soon": expected a number and a unit (h, m, '
            "s, ms) like 500ms, 10s, 2m, 1h, 1m30s",
            "localisation.hops: unknown key (allowed: enabled, max_hops, concurrency, interval, "
            "timeout)",
        },
    ),
    (
        "blockpage-headers-not-a-mapping",
        "blockpage_headers: [server]\n" + SERVICES,
        {
            "blockpage_headers: expected a mapping of header names to lists of regular "
            "expressions, got a list",
        },
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in BAD], ids=[i for i, _, _ in BAD]
)
def test_bad_config_reports_exact_errors(text: str, expected: set[str]) -> None:
    assert error_lines(text) == expected


def test_bad_table_is_large() -> None:
    assert len(BAD) >= 30


# --------------------------------------------------------------------------------------------
# Good configs → resolved objects


def test_defaults() -> None:
    config = parse_yaml(SERVICES)
    assert config.interval == 60.0
    assert config.timeout == 10.0
    assert config.concurrency == 64
    assert config.ip_families == (4,)
    assert dict(config.resolvers) == {
        "system": Resolver(name="system", type=ResolverType.SYSTEM, port=53)
    }
    assert dict(config.networks) == {"default": Network(name="default")}
    endpoint = config.services["s"].endpoints["e"]
    assert endpoint.service == "s"
    assert endpoint.name == "e"
    assert endpoint.host == "example.org"
    assert endpoint.address is None
    assert endpoint.port == 443
    assert endpoint.checks == DEFAULT_CHECKS
    assert endpoint.tls == TlsOptions()
    assert endpoint.http.method == "GET"
    assert endpoint.http.path == "/"
    assert endpoint.http.expect_status == DEFAULT_EXPECT_STATUS
    assert endpoint.http.body_limit == DEFAULT_BODY_LIMIT
    assert endpoint.resolvers == ("system",)
    assert endpoint.networks == ("default",)
    assert endpoint.families == (4,)


def test_top_level_scalars() -> None:
    config = parse_yaml(
        "interval: 1m30s\ntimeout: 500ms\nconcurrency: 8\nip_families: [6, 4]\n" + SERVICES
    )
    assert config.interval == 90.0
    assert config.timeout == 0.5
    assert config.concurrency == 8
    assert config.ip_families == (4, 6)
    assert config.services["s"].endpoints["e"].families == (4, 6)


NARROWING = y(
    """
    ip_families: [4, 6]
    resolvers:
      system: {type: system}
      google: {type: udp, address: 8.8.8.8}
      cf-doh: {type: doh, url: "https://1.1.1.1/dns-query"}
    networks:
      default:
      uplink-b: {source_address: 192.0.2.10}
      wg0: {interface: wg0}
    services:
      telegram:
        resolvers: [cf-doh, google]
        networks: [default]
        endpoints:
          web: {host: web.telegram.org, port: 443}
          narrowed: {host: web.telegram.org, port: 443, resolvers: [system], networks: [wg0]}
          v6only: {host: web.telegram.org, port: 443, ip_families: [6]}
          dc2: {address: 149.154.167.51, port: 443}
          dc2-v6: {address: "2001:67c:4e8:f002::a", port: 443}
      other:
        endpoints:
          all: {host: example.org, port: 443}
    """
)


def test_narrowing_and_families() -> None:
    config = parse_yaml(NARROWING)
    tg = config.services["telegram"].endpoints
    # service-level narrowing, in the order of the list
    assert tg["web"].resolvers == ("cf-doh", "google")
    assert tg["web"].networks == ("default",)
    assert tg["web"].families == (4, 6)
    # endpoint-level narrowing overrides the service's
    assert tg["narrowed"].resolvers == ("system",)
    assert tg["narrowed"].networks == ("wg0",)
    assert tg["v6only"].families == (6,)
    # an address endpoint: no resolvers, its own family
    assert tg["dc2"].resolvers == ()
    assert tg["dc2"].families == (4,)
    assert tg["dc2"].checks == (Check.TCP,)
    assert tg["dc2-v6"].address == "2001:67c:4e8:f002::a"
    assert tg["dc2-v6"].families == (6,)
    # no narrowing: everything, in config order
    everything = config.services["other"].endpoints["all"]
    assert everything.resolvers == ("system", "google", "cf-doh")
    assert everything.networks == ("default", "uplink-b", "wg0")
    # `default:` with no value is the empty network
    assert config.networks["default"] == Network(name="default")
    # the matrix expands without surprises
    keys = {(t.key.endpoint, t.key.resolver, t.key.family) for t in expand(config)}
    assert ("dc2", "none", 4) in keys
    assert ("dc2-v6", "none", 6) in keys
    assert ("v6only", "google", 4) not in keys


@pytest.mark.parametrize(
    ("endpoint", "checks"),
    [
        ("{host: a.example, port: 443, checks: [http, tcp, tls]}", "dns tcp tls http"),
        ("{host: a.example, port: 443, checks: [tcp]}", "dns tcp"),
        ("{host: a.example, port: 443, checks: [dns]}", "dns"),
        ("{host: a.example, port: 443}", "dns tcp tls http"),
        ("{address: 192.0.2.1, port: 443}", "tcp"),
        ("{address: 192.0.2.1, port: 80, checks: [http, tcp]}", "tcp http"),
        ("{host: a.example, address: 192.0.2.1, port: 443}", "tcp tls http"),
    ],
)
def test_checks_normalisation(endpoint: str, checks: str) -> None:
    config = parse_yaml(f"services:\n  s:\n    endpoints:\n      e: {endpoint}\n")
    got = config.services["s"].endpoints["e"].checks
    assert got == tuple(Check(c) for c in checks.split())


RESOLVERS = y(
    """
    resolvers:
      udp: {type: udp, address: 8.8.8.8}
      tcp: {type: tcp, address: "2001:4860:4860:0:0:0:0:8888", port: 5353}
      dot: {type: dot, address: 1.1.1.1, server_name: one.one.one.one}
      dot-tls-name: {type: dot, address: 1.1.1.1, tls: {server_name: one.one.one.one}}
      dot-insecure: {type: dot, address: 1.1.1.1, tls: {insecure_skip_verify: true}}
      doq: {type: doq, address: 94.140.14.140, server_name: unfiltered.adguard-dns.com}
      doh-ip: {type: doh, url: "https://1.1.1.1:8443/dns-query"}
      doh-name: {type: doh, url: "https://cloudflare-dns.com/dns-query", address: 1.1.1.1}
      doh-sni: {type: doh, url: "https://1.1.1.1/dns-query", server_name: cloudflare-dns.com}
    """
)


def test_resolvers() -> None:
    r = parse_yaml(RESOLVERS + SERVICES).resolvers
    assert list(r) == [
        "udp",
        "tcp",
        "dot",
        "dot-tls-name",
        "dot-insecure",
        "doq",
        "doh-ip",
        "doh-name",
        "doh-sni",
    ]
    assert r["udp"] == Resolver(name="udp", type=ResolverType.UDP, address="8.8.8.8", port=53)
    # addresses are normalised; an explicit port wins
    assert r["tcp"].address == "2001:4860:4860::8888"
    assert r["tcp"].port == 5353
    assert r["dot"].port == 853
    assert r["dot"].server_name == "one.one.one.one"
    assert r["dot"].encrypted
    # tls.server_name alone also names the certificate
    assert r["dot-tls-name"].server_name == "one.one.one.one"
    assert r["dot-insecure"].server_name is None
    assert r["dot-insecure"].tls.insecure_skip_verify is True
    assert r["doq"].port == 853
    # DoH: the port and, for an IP host, the address come from the URL
    assert r["doh-ip"].url == "https://1.1.1.1:8443/dns-query"
    assert r["doh-ip"].port == 8443
    assert r["doh-ip"].address == "1.1.1.1"
    assert r["doh-ip"].server_name == "1.1.1.1"
    assert r["doh-name"].port == 443
    assert r["doh-name"].address == "1.1.1.1"
    assert r["doh-name"].server_name == "cloudflare-dns.com"
    assert r["doh-sni"].server_name == "cloudflare-dns.com"


def test_networks_and_proxy_credentials() -> None:
    config = parse_yaml(
        y(
            """
            resolvers:
              doh: {type: doh, url: "https://1.1.1.1/dns-query"}
            networks:
              all: {source_address: 192.0.2.10, interface: wg0, netns: vpn.1,
                    proxy: "socks5://alice:s%40cret@127.0.0.1:1080"}
              tor: {proxy: "SOCKS5://localhost:9050"}
              s4: {proxy: "socks4://[::1]:1080"}
            """
        )
        + SERVICES
    )
    net = config.networks["all"]
    assert net.source_address == "192.0.2.10"
    assert net.interface == "wg0"
    assert net.netns == "vpn.1"
    assert net.proxy == Proxy(
        scheme="socks5", host="127.0.0.1", port=1080, username="alice", password="s@cret"
    )
    assert net.proxy.redacted_url == "socks5://<redacted>@127.0.0.1:1080"
    assert "s@cret" not in repr(net)
    assert "s%40cret" not in repr(config)
    assert "s@cret" not in repr(config)
    assert config.networks["tor"].proxy == Proxy(scheme="socks5", host="localhost", port=9050)
    assert config.networks["s4"].proxy == Proxy(scheme="socks4", host="::1", port=1080)


def test_proxy_errors_never_show_the_password() -> None:
    text = y(
        """
        networks:
          a: {proxy: "socks5://alice:hunter2@proxy.example:1080"}
          b: {proxy: "socks4://alice:hunter2@127.0.0.1:1080"}
          c: {proxy: "socks5://alice:hunter2@127.0.0.1:bad"}
        """
    )
    lines = error_lines(text + SERVICES)
    assert len(lines) == 3
    assert not any("hunter2" in line for line in lines)


def test_http_options() -> None:
    config = parse_yaml(
        y(
            r"""
            services:
              s:
                endpoints:
                  e:
                    host: example.org
                    port: 443
                    http:
                      method: POST
                      path: /v2/register?x=1
                      expect_status: [204, 4xx]
                      fail_if_body_matches: ['(?i)<title>blocked', '\d{3} denied']
                      headers: {User-Agent: probe/1.0, X-Empty: ""}
                      body_limit: 1MiB
                  f: {host: example.org, port: 443, http: {body_limit: 4096, method: HEAD}}
            """
        )
    )
    http = config.services["s"].endpoints["e"].http
    assert http.method == "POST"
    assert http.path == "/v2/register?x=1"
    assert http.expect_status == (StatusRange(low=204, high=204), StatusRange(low=400, high=499))
    assert http.status_ok(204)
    assert http.status_ok(404)
    assert not http.status_ok(200)
    assert [p.pattern for p in http.fail_if_body_matches] == [
        b"(?i)<title>blocked",
        rb"\d{3} denied",
    ]
    assert http.fail_if_body_matches[0].search(b"<TITLE>Blocked by order")
    assert dict(http.headers) == {"User-Agent": "probe/1.0", "X-Empty": ""}
    assert isinstance(http.headers, MappingProxyType)
    assert http.body_limit == 1024 * 1024
    f = config.services["s"].endpoints["f"].http
    assert (f.method, f.body_limit) == ("HEAD", 4096)


def test_mappings_are_immutable_and_ordered() -> None:
    config = parse_yaml(NARROWING)
    for mapping in (
        config.resolvers,
        config.networks,
        config.services,
        config.services["telegram"].endpoints,
    ):
        assert isinstance(mapping, MappingProxyType)
    assert list(config.services) == ["telegram", "other"]
    assert list(config.services["telegram"].endpoints) == [
        "web",
        "narrowed",
        "v6only",
        "dc2",
        "dc2-v6",
    ]
    with pytest.raises(TypeError):
        config.services["x"] = config.services["other"]  # type: ignore[index]


def test_ca_files_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "roots.pem").write_bytes(PEM)
    (tmp_path / "not-pem.txt").write_bytes(b"hello\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        y(
            """
            resolvers:
              dot: {type: dot, address: 1.1.1.1, server_name: a.example, tls: {ca_file: roots.pem}}
            services:
              s:
                endpoints:
                  e: {host: example.org, port: 443, tls: {extra_ca_file: roots.pem}}
            """
        )
    )
    config = load(path)
    assert config.resolvers["dot"].tls.ca_file == str(tmp_path / "roots.pem")
    assert config.services["s"].endpoints["e"].tls.extra_ca_file == str(tmp_path / "roots.pem")

    path.write_text(
        "services:\n  s:\n    endpoints:\n"
        "      e: {host: example.org, port: 443, tls: {ca_file: not-pem.txt}}\n"
    )
    with pytest.raises(ConfigErrors) as info:
        load(path)
    assert str(info.value) == (
        f'services.s.endpoints.e.tls.ca_file: "{tmp_path / "not-pem.txt"}" holds no PEM '
        "certificate (-----BEGIN CERTIFICATE-----)"
    )


def test_yaml_merge_keys_may_override() -> None:
    config = parse_yaml(
        y(
            """
            services:
              s:
                endpoints:
                  a: &base {host: example.org, port: 443, checks: [dns, tcp]}
                  b:
                    <<: *base
                    port: 5222
            """
        )
    )
    assert config.services["s"].endpoints["b"].port == 5222
    assert config.services["s"].endpoints["b"].host == "example.org"


VERDICT_KEYS = y(
    r"""
    ip_families: [4, 6]
    control_sni: example.com
    resolvers:
      google:
        type: udp
        address: 8.8.8.8
        identity: {qname: o-o.myaddr.l.google.com, expect: '^"?(?:74\.125|172\.253)\.'}
      cf-doh: {type: doh, url: "https://1.1.1.1/dns-query"}
      nobody: {type: udp, address: 192.0.2.7, silent: true}
      nobody-tcp:
        type: tcp
        address: 192.0.2.7
        silent: true
        identity: {qname: id.server, qtype: TXT, qclass: CH, expect: "^[A-Z]{3}$"}
      sys: {type: system, identity: {qname: whoami.example, qtype: A, expect: '^192\.0\.2\.'}}
    networks:
      default: {}
      uplink-b: {source_address: 192.0.2.10}
    canaries:
      example: {host: example.com, port: 443}
      wiki: {host: www.wikipedia.org, port: 443, checks: [dns, tcp, tls], ip_families: [4]}
      plain: {host: captive.apple.com, port: 80, checks: [dns, tcp, http]}
      quad9: {address: 9.9.9.9, port: 443}
      own-control: {host: one.example, port: 443, control_sni: two.example}
    services:
      telegram:
        expected_networks: [149.154.160.0/20, 91.108.4.0/22, "2001:b28:f23d::/48"]
        control_sni: www.example.net
        endpoints:
          web: {host: web.telegram.org, port: 443}
          override: {host: web.telegram.org, port: 443, control_sni: www.example.org}
          dns-only: {host: web.telegram.org, port: 443, checks: [dns]}
          plain-http: {host: web.telegram.org, port: 80, checks: [tcp, http]}
          dc2: {address: 149.154.167.51, port: 443, checks: [tcp, http]}
          dc2-tls: {address: 149.154.167.51, host: web.telegram.org, port: 443}
      other:
        resolvers: [cf-doh]
        endpoints:
          inherits-top: {host: example.org, port: 443}
          same-as-top: {host: example.com, port: 443}
    """
)


def test_silent_and_identity_resolvers() -> None:
    r = parse_yaml(VERDICT_KEYS).resolvers
    assert r["google"].silent is False
    assert r["google"].identity == IdentityCheck(
        qname="o-o.myaddr.l.google.com",
        qtype="TXT",
        qclass="IN",
        expect=re.compile(r'^"?(?:74\.125|172\.253)\.'),
    )
    assert r["google"].identity.expect.search('"172.253.226.34"')
    assert r["cf-doh"].identity is None
    assert r["nobody"].silent is True
    assert r["nobody"].identity is None
    # silent and identity together: the silent check asks identity's question
    assert r["nobody-tcp"].silent is True
    assert r["nobody-tcp"].identity is not None
    assert (r["nobody-tcp"].identity.qtype, r["nobody-tcp"].identity.qclass) == ("TXT", "CH")
    assert r["sys"].identity is not None
    assert r["sys"].identity.qtype == "A"


def test_canaries_are_the_canary_service_on_every_network_and_dns_resolver() -> None:
    config = parse_yaml(VERDICT_KEYS)
    assert list(config.services) == ["telegram", "other", CANARY_SERVICE]
    canary = config.services[CANARY_SERVICE]
    assert canary.name == "canary"
    assert list(canary.endpoints) == ["example", "wiki", "plain", "quad9", "own-control"]
    for endpoint in canary.endpoints.values():
        assert endpoint.service == "canary"
        assert endpoint.networks == ("default", "uplink-b")
        assert endpoint.expected_networks == ()
    example = canary.endpoints["example"]
    # every resolver but the silent ones, in file order
    assert example.resolvers == ("google", "cf-doh", "sys")
    assert example.families == (4, 6)
    assert example.checks == DEFAULT_CHECKS
    assert canary.endpoints["wiki"].families == (4,)
    assert canary.endpoints["quad9"].resolvers == ()
    assert canary.endpoints["quad9"].checks == (Check.TCP,)
    # the silent resolvers answer no endpoint's DNS, not even by default
    for endpoint in config.endpoints():
        assert "nobody" not in endpoint.resolvers
        assert "nobody-tcp" not in endpoint.resolvers
    assert config.services["telegram"].endpoints["web"].resolvers == ("google", "cf-doh", "sys")
    # canary tuples are ordinary tuples labelled service="canary"
    keys = {t.key for t in expand(config)}
    canary_keys = {k for k in keys if k.service == "canary"}
    assert {k.resolver for k in canary_keys} == {"google", "cf-doh", "sys", "none"}
    assert {k.network for k in canary_keys} == {"default", "uplink-b"}


def test_control_sni_inheritance() -> None:
    config = parse_yaml(VERDICT_KEYS)
    tg = config.services["telegram"].endpoints
    assert tg["web"].control_sni == "www.example.net"  # the service's beats the top level's
    assert tg["override"].control_sni == "www.example.org"  # the endpoint's beats both
    assert tg["dns-only"].control_sni is None  # no tls: the default is ignored
    assert tg["plain-http"].control_sni is None
    assert tg["dc2"].control_sni is None
    assert tg["dc2-tls"].control_sni == "www.example.net"  # address + host with tls
    other = config.services["other"].endpoints
    assert other["inherits-top"].control_sni == "example.com"
    # an inherited default that is the endpoint's own name would control nothing
    assert other["same-as-top"].control_sni is None
    canary = config.services[CANARY_SERVICE].endpoints
    assert canary["example"].control_sni is None
    assert canary["wiki"].control_sni == "example.com"
    assert canary["plain"].control_sni is None
    assert canary["own-control"].control_sni == "two.example"


def test_no_control_sni_by_default() -> None:
    assert parse_yaml(SERVICES).services["s"].endpoints["e"].control_sni is None


def test_expected_networks() -> None:
    config = parse_yaml(VERDICT_KEYS)
    expected = (
        ipaddress.ip_network("149.154.160.0/20"),
        ipaddress.ip_network("91.108.4.0/22"),
        ipaddress.ip_network("2001:b28:f23d::/48"),
    )
    for endpoint in config.services["telegram"].endpoints.values():
        assert endpoint.expected_networks == expected
    for endpoint in config.services["other"].endpoints.values():
        assert endpoint.expected_networks == ()
    # a single address is a /32 (or /128) network
    config = parse_yaml(
        "services:\n  s:\n    expected_networks: [192.0.2.1]\n    endpoints:\n"
        "      e: {host: example.org, port: 443}\n"
    )
    assert config.services["s"].endpoints["e"].expected_networks == (
        ipaddress.ip_network("192.0.2.1/32"),
    )


def test_blockpage_lists_default_to_the_shipped_ones() -> None:
    config = parse_yaml(SERVICES)
    assert config.blockpage_addresses == DEFAULT_BLOCKPAGE_ADDRESSES
    assert {"10.10.34.34", "10.10.34.35", "10.10.34.36", "d0::11", "195.175.254.2"} <= (
        config.blockpage_addresses
    )
    assert [p.pattern for p in config.blockpage_patterns] == [
        p.encode() for p in DEFAULT_BLOCKPAGE_PATTERNS
    ]
    assert all(isinstance(p.pattern, bytes) for p in config.blockpage_patterns)
    assert {
        name: [p.pattern for p in patterns] for name, patterns in config.blockpage_headers.items()
    } == {
        name: [p.encode() for p in patterns] for name, patterns in DEFAULT_BLOCKPAGE_HEADERS.items()
    }


def test_localisation_defaults_and_options() -> None:
    assert parse_yaml(SERVICES).localisation == Localisation()
    given = parse_yaml(
        "localisation: {enabled: false, max_hops: 12, concurrency: 2, interval: 5m, "
        "timeout: 4s}\n" + SERVICES
    ).localisation
    assert given == Localisation(
        enabled=False, max_hops=12, concurrency=2, interval=300.0, timeout=4.0
    )


def test_blockpage_headers_given_replace_the_shipped_ones() -> None:
    config = parse_yaml("blockpage_headers: {X-Blocked-By: ['^Lab regulator$']}\n" + SERVICES)
    assert list(config.blockpage_headers) == ["x-blocked-by"]
    (pattern,) = config.blockpage_headers["x-blocked-by"]
    assert pattern.search(b"Lab regulator")
    assert parse_yaml("blockpage_headers: {}\n" + SERVICES).blockpage_headers == {}


def test_blockpage_lists_given_replace_the_shipped_ones() -> None:
    config = parse_yaml(
        y(
            r"""
            blockpage_addresses: [192.0.2.66, "2001:DB8:0::66"]
            blockpage_patterns: ['(?i)<title>access denied', 'ministry\.example/block']
            """
        )
        + SERVICES
    )
    assert config.blockpage_addresses == frozenset({"192.0.2.66", "2001:db8::66"})
    assert [p.pattern for p in config.blockpage_patterns] == [
        b"(?i)<title>access denied",
        rb"ministry\.example/block",
    ]
    assert config.blockpage_patterns[0].search(b"<TITLE>Access Denied</TITLE>")
    # [] replaces the shipped list with nothing
    config = parse_yaml("blockpage_addresses: []\nblockpage_patterns: []\n" + SERVICES)
    assert config.blockpage_addresses == frozenset()
    assert config.blockpage_patterns == ()


def test_parse_takes_plain_data() -> None:
    config = parse({"services": {"s": {"endpoints": {"e": {"address": "192.0.2.1", "port": 80}}}}})
    assert config.services["s"].endpoints["e"].address == "192.0.2.1"
    with pytest.raises(ConfigErrors) as info:
        parse({"services": {1: {"endpoints": {"e": {"address": "192.0.2.1", "port": 80}}}}})
    assert str(info.value) == "services.1: a service name must be a string, got 1 (quote it)"


# --------------------------------------------------------------------------------------------
# Reporting


def test_every_error_at_once() -> None:
    text = y(
        """
        interval: 12
        resolvers:
          google: {type: udp, address: 8.8.8.8}
        networks:
          tor: {proxy: "socks5://127.0.0.1:9050"}
        services:
          telegram:
            resolvers: [gogle]
            endpoints:
              web: {host: web.telegram.org, port: 70000}
          whatsapp:
            endpoints:
              web: {host: web.whatsapp.com, port: 443}
        """
    )
    with pytest.raises(ConfigErrors) as info:
        parse_yaml(text)
    assert [str(e) for e in info.value.errors] == [
        "interval: expected a duration like 500ms, 10s, 2m, got 12",
        'services.telegram.resolvers[0]: unknown resolver "gogle" (defined: google)',
        "services.telegram.endpoints.web.port: 70000 is not a port (1-65535)",
        "services.whatsapp.endpoints.web: no resolver of it can be asked through any of its "
        'networks ("google" through "tor": a SOCKS proxy carries only TCP); add a resolver its '
        "networks can carry (tcp, dot or doh), or another network",
    ]
    assert str(info.value) == "\n".join(str(e) for e in info.value.errors)


def test_config_error_str() -> None:
    error = ConfigError("services.telegram.endpoints.web.port", "70000 is not a port (1-65535)")
    assert str(error) == "services.telegram.endpoints.web.port: 70000 is not a port (1-65535)"
    errors = ConfigErrors([error, ConfigError("interval", "bad")])
    assert str(errors) == f"{error}\ninterval: bad"
    assert errors.errors[1] == ConfigError("interval", "bad")


def test_duplicate_keys() -> None:
    text = y(
        """
        interval: 10s
        services:
          s:
            endpoints:
              web: {host: example.org, port: 443}
              web: {host: example.com, port: 443}
        interval: 20s
        """
    )
    assert error_lines(text) == {
        '<yaml>: line 6, column 7: duplicate key "web" (first on line 5)',
        '<yaml>: line 7, column 1: duplicate key "interval" (first on line 1)',
    }


def test_duplicate_keys_are_reported_with_other_errors() -> None:
    text = "concurrency: 0\nconcurrency: -1\n" + SERVICES
    assert error_lines(text) == {
        '<yaml>: line 2, column 1: duplicate key "concurrency" (first on line 1)',
        "concurrency: expected an integer of at least 1, got -1",
    }


def test_yaml_syntax_error() -> None:
    text = "services:\n  s:\n    endpoints: [a\n  b: c\n"
    lines = error_lines(text)
    assert len(lines) == 1
    (line,) = lines
    assert re.fullmatch(r"<yaml>: line \d+, column \d+: .+", line), line
    assert error_lines("a: b: c\n") == {
        "<yaml>: line 1, column 5: mapping values are not allowed here"
    }


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"services:\n  s\xff: {}\n")
    with pytest.raises(ConfigErrors) as info:
        load(path)
    assert str(info.value) == f"{path}: not valid UTF-8: byte 0xff at line 2, column 4"


def test_yaml_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("a: b: c\n")
    with pytest.raises(ConfigErrors) as info:
        load(path)
    assert str(info.value) == f"{path}: line 1, column 5: mapping values are not allowed here"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file"
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a config file"


def test_bom_is_accepted() -> None:
    assert parse_yaml(b"\xef\xbb\xbf" + SERVICES.encode()).services["s"]


# --------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3s4ms", 3723.004),
        ("1.5s", 1.5),
        (".25s", 0.25),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("10", 'invalid duration "10": expected a number and a unit'),
        ("10 s", 'invalid duration "10 s"'),
        ("-1s", 'invalid duration "-1s"'),
        ("1d", 'invalid duration "1d"'),
        ("30s1m", "units must go from the largest to the smallest"),
        ("1s1s", "units must go from the largest to the smallest"),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(text)


# --------------------------------------------------------------------------------------------
# The shipped config, and purity


def test_shipped_config_loads() -> None:
    config = load(REPO / "config.yaml")
    assert config.interval == 60.0
    assert config.timeout == 10.0
    assert config.ip_families == (4,)
    assert {r.type for r in config.resolvers.values()} == set(ResolverType)
    assert list(config.services) == ["telegram", "whatsapp", "signal", "messenger", "canary"]
    telegram = config.services["telegram"].endpoints
    assert telegram["web"].checks == DEFAULT_CHECKS
    for name, endpoint in telegram.items():
        if Check.MTPROTO in endpoint.checks:
            assert endpoint.checks == (Check.TCP, Check.MTPROTO)  # Telegram's own protocol
        elif name != "web":
            assert endpoint.checks == (Check.TCP, Check.HTTP)
            assert endpoint.http.method == "POST"
            assert all(endpoint.http.status_ok(s) for s in (101, 200, 302, 404, 501))
    whatsapp = config.services["whatsapp"].endpoints
    assert whatsapp["e16-5222"].resolvers == ("system", "google", "cloudflare-doh")
    assert set(whatsapp["web"].resolvers) == set(config.resolvers) - {"nobody"}
    assert whatsapp["registration"].resolvers == whatsapp["web"].resolvers
    targets = expand(config)
    assert len(targets) == len({t.key for t in targets})
    for endpoint in config.endpoints():
        assert endpoint.tls.ca_file is None or Path(endpoint.tls.ca_file).is_file()
        assert endpoint.tls.extra_ca_file is None or Path(endpoint.tls.extra_ca_file).is_file()


def test_shipped_config_verdict_keys() -> None:
    config = load(REPO / "config.yaml")
    resolvers = config.resolvers
    # the canaries: every network, every resolver but the silent one
    canaries = config.services[CANARY_SERVICE].endpoints
    assert set(canaries) == {"example", "apple", "stun-google", "stun-cloudflare"}
    dns_resolvers = tuple(name for name in resolvers if name != "nobody")
    for endpoint in canaries.values():
        assert endpoint.resolvers == dns_resolvers
        assert endpoint.networks == tuple(config.networks)
    assert resolvers["nobody"].silent
    assert not any("nobody" in e.resolvers for e in config.endpoints())
    # control_sni: on every endpoint with tls, except the one whose name it is
    for endpoint in config.endpoints():
        if Check.TLS not in endpoint.checks or endpoint.host == "example.com":
            assert endpoint.control_sni is None
        else:
            assert endpoint.control_sni == "example.com"
    # Telegram's published ranges hold its data centres (but DC2's second address)
    telegram = config.services["telegram"].endpoints
    nets = telegram["web"].expected_networks
    assert len(nets) == 14
    assert {n.version for n in nets} == {4, 6}
    for name, endpoint in telegram.items():
        assert endpoint.expected_networks == nets
        if endpoint.address is not None and endpoint.address != "95.161.76.100":
            assert any(ipaddress.ip_address(endpoint.address) in n for n in nets), name
    # Signal's names resolve to several clouds: its answers are judged by verification;
    # WhatsApp and Messenger have Meta's (and AWS Global Accelerator's) prefixes
    # (tests/test_shipped_config.py).
    for endpoint in config.services["signal"].endpoints.values():
        assert endpoint.expected_networks == ()
    for service in ("whatsapp", "messenger"):
        for endpoint in config.services[service].endpoints.values():
            assert {n.version for n in endpoint.expected_networks} == {4, 6}
    # identity: the truthful answers pass, an impostor's (or a non-answer) does not
    google = resolvers["google"].identity
    assert google is not None
    assert resolvers["google-tcp"].identity == google
    for answer in ("172.253.226.34", '"74.125.18.131"', "2a00:1450:4025:c01::10b"):
        assert google.expect.search(answer), answer
    for answer in ("203.0.113.53", "10.0.0.1", "edns0-client-subnet 203.0.113.0/24", ""):
        assert not google.expect.search(answer), answer
    cloudflare = resolvers["cloudflare"].identity
    assert cloudflare is not None
    assert (cloudflare.qname, cloudflare.qtype, cloudflare.qclass) == ("id.server", "TXT", "CH")
    for answer in ("FRA", '"AMS"'):
        assert cloudflare.expect.search(answer), answer
    for answer in ("unbound-1.17", "dns1.isp.example", "fra"):
        assert not cloudflare.expect.search(answer), answer
    # the shipped blockpage lists
    assert config.blockpage_addresses == DEFAULT_BLOCKPAGE_ADDRESSES
    assert len(config.blockpage_patterns) == len(DEFAULT_BLOCKPAGE_PATTERNS)


def test_loader_imports_no_sockets() -> None:
    code = (
        "import sys, exporter.config.loader; "
        "sys.exit('socket' in sys.modules or 'ssl' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("example", "left_out"),
    [
        ("uplink-b", set()),
        ("wg0", {"adguard-doq", "cloudflare-doh3"}),
        ("vpn", {"adguard-doq", "cloudflare-doh3"}),
        ("tor", {"system", "google", "cloudflare", "adguard-doq", "cloudflare-doh3", "nobody"}),
    ],
)
def test_shipped_network_examples_behave_as_their_comments_say(
    example: str, left_out: set[str]
) -> None:
    """Uncommented, each example loads as it is, and the resolvers it cannot carry are left
    out of the matrix on it (and only on it), as its comment says. (That `check` passes with
    the example's interface and namespace present: tests/test_shipped_config.py.)"""
    text = (REPO / "config.yaml").read_text()
    commented = f"  # {example}: {{"
    assert text.count(commented) == 1
    config = parse_yaml(text.replace(commented, f"  {example}: {{"))
    assert example in config.networks
    asked = {t.key.resolver for t in expand(config) if t.key.network == example}
    everywhere = {t.key.resolver for t in expand(config) if t.key.network == "default"}
    assert everywhere - asked == left_out
    lines = [line for line in skipped(config) if line.startswith(f"network {example}:")]
    assert bool(lines) == bool(left_out)
    for name in left_out:
        assert name in lines[0]


def test_matrix_leaves_out_what_a_network_cannot_carry() -> None:
    config = parse_yaml(
        y(
            """
            resolvers:
              system: {type: system}
              google: {type: udp, address: 8.8.8.8}
              google-tcp: {type: tcp, address: 8.8.8.8}
              doh: {type: doh, url: "https://1.1.1.1/dns-query"}
              doq: {type: doq, address: 94.140.14.140, server_name: dns.example}
              nobody: {type: udp, address: 192.0.2.7, silent: true}
            networks:
              src: {source_address: 192.0.2.10}
              wg0: {interface: wg0}
              tor: {proxy: "socks5://127.0.0.1:9050"}
            canaries:
              example: {host: example.com, port: 443, quic: {}}
            services:
              s:
                endpoints:
                  e: {host: example.org, port: 443}
                  h3: {host: example.org, port: 443, checks: [dns, quic]}
            """
        )
    )
    targets = expand(config)
    asked = {
        n: {t.key.resolver for t in targets if t.key.network == n and t.key.endpoint == "e"}
        for n in config.networks
    }
    assert asked == {
        "src": {"system", "google", "google-tcp", "doh", "doq"},
        "wg0": {"system", "google", "google-tcp", "doh"},
        "tor": {"google-tcp", "doh"},
    }
    # the silent resolver's check: every network but the proxy
    assert {t.key.network for t in targets if t.key.resolver == "nobody"} == {"src", "wg0"}
    # the quic check: dropped through the proxy, and a QUIC-only endpoint not probed there
    canary_checks = {t.key.network: t.endpoint.checks for t in targets if t.key.service == "canary"}
    assert Check.QUIC not in canary_checks["tor"]
    assert Check.QUIC in canary_checks["src"]
    assert "tor" not in {t.key.network for t in targets if t.key.endpoint == "h3"}
    assert skipped(config) == [
        "network tor: not asked through it: resolvers doq, google, nobody, system (a SOCKS "
        "proxy carries only TCP)",
        "network wg0: not asked through it: resolvers doq (DoQ and DoH3 open their own socket "
        "and honour only a network's source_address)",
        "network tor: no quic check through it (a SOCKS proxy carries only TCP) for s.h3, "
        "canary.example",
    ]


def test_an_address_endpoint_of_a_family_not_asked_for_is_not_probed() -> None:
    """Telegram's IPv6 data centres run only where ip_families has 6."""
    text = y(
        """
        ip_families: [4]
        services:
          telegram:
            endpoints:
              dc1: {address: 149.154.175.50, port: 443, checks: [tcp]}
              dc1-v6: {address: "2001:b28:f23d:f001::a", port: 443, checks: [tcp]}
        """
    )
    v4 = parse_yaml(text)
    assert [t.key.endpoint for t in expand(v4)] == ["dc1"]
    assert skipped(v4) == ["not probed: IPv6 is not in ip_families: telegram.dc1-v6"]
    both = parse_yaml(text.replace("ip_families: [4]", "ip_families: [4, 6]"))
    assert sorted((t.key.endpoint, t.key.family) for t in expand(both)) == [
        ("dc1", 4),
        ("dc1-v6", 6),
    ]
    assert skipped(both) == []


# --------------------------------------------------------------------------------------------
# The throughput check and the throttling rule (issue 4)

THROUGHPUT_BAD: list[tuple[str, str, set[str]]] = [
    (
        "throughput-needs-http",
        y(
            """
            services:
              s:
                endpoints:
                  a: {host: example.org, port: 443, checks: [tcp, tls, throughput]}
                  b: {address: 192.0.2.1, port: 443, throughput: {path: /large}}
                  c: {host: example.org, port: 443, checks: [tcp, tls, http],
                      throughput: {path: /large}}
            """
        ),
        {
            "services.s.endpoints.a.checks: throughput needs http (add http)",
            "services.s.endpoints.b.throughput: throughput options given but throughput is not "
            "in checks (it needs http)",
            "services.s.endpoints.c.throughput: throughput options given but throughput is not "
            "in checks",
        },
    ),
    (
        "throughput-options",
        y(
            """
            services:
              s:
                endpoints:
                  a: {host: example.org, port: 443, throughput: {path: large, size: 1}}
                  b: {host: example.org, port: 443, throughput: {path: "/a b", bytes: 0}}
                  c: {host: example.org, port: 443, throughput: {bytes: 17MiB}}
                  d: {host: example.org, port: 443, throughput: {bytes: "1 GB"}}
                  e: {host: example.org, port: 443, throughput: {bytes: -5}}
                  f: {host: example.org, port: 443, throughput: /large}
            """
        ),
        {
            'services.s.endpoints.a.throughput.path: expected a path starting with /, got "large"',
            "services.s.endpoints.a.throughput.size: unknown key (allowed: path, bytes)",
            "services.s.endpoints.b.throughput.path: must not contain spaces or control characters",
            "services.s.endpoints.b.throughput.bytes: must be more than 0 (nothing to measure)",
            'services.s.endpoints.c.throughput.bytes: "17MiB" is more than the maximum of 16MiB',
            "services.s.endpoints.d.throughput.bytes: expected a size in bytes or like 256KiB, "
            '1MiB (units B, KiB, MiB), got "1 GB"',
            "services.s.endpoints.e.throughput.bytes: expected a size in bytes or like 256KiB, "
            "1MiB (units B, KiB, MiB), got -5",
            "services.s.endpoints.f.throughput: expected a mapping of throughput options (path, "
            'bytes), got "/large"',
        },
    ),
    (
        "throttling-options",
        "throttling: {ratio: 1, baseline_rounds: -1, min_bytes_per_second: fast, window: 3}\n"
        + SERVICES,
        {
            "throttling.ratio: expected a number between 0 and 1 (both excluded) like 0.25, got 1",
            "throttling.baseline_rounds: expected an integer from 0 (no baseline) to 1000, got -1",
            "throttling.min_bytes_per_second: expected bytes per second as a number or like "
            '256KiB, 1MiB (units B, KiB, MiB), got "fast"',
            "throttling.window: unknown key (allowed: ratio, baseline_rounds, "
            "min_bytes_per_second)",
        },
    ),
    (
        "throttling-shapes",
        "throttling: [0.25]\n" + SERVICES,
        {
            "throttling: expected a mapping of throttling options (ratio, baseline_rounds), got "
            "a list"
        },
    ),
    (
        "throttling-types",
        "throttling: {ratio: true, baseline_rounds: 2.5}\n" + SERVICES,
        {
            "throttling.ratio: expected a number between 0 and 1 (both excluded) like 0.25, "
            "got true",
            "throttling.baseline_rounds: expected an integer from 0 (no baseline) to 1000, got 2.5",
        },
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(t, e) for _, t, e in THROUGHPUT_BAD],
    ids=[i for i, _, _ in THROUGHPUT_BAD],
)
def test_throughput_and_throttling_errors(text: str, expected: set[str]) -> None:
    assert error_lines(text) == expected


def test_throughput_is_opt_in_and_its_options_resolve() -> None:
    from exporter.config.model import DEFAULT_THROUGHPUT_BYTES, Throttling, ThroughputOptions

    config = parse_yaml(
        y(
            """
            throttling: {ratio: 0.1, baseline_rounds: 0, min_bytes_per_second: 2MiB}
            services:
              s:
                endpoints:
                  plain: {host: example.org, port: 443}
                  listed: {host: example.org, port: 443, checks: [tcp, tls, http, throughput],
                           http: {path: /health}}
                  implied: {host: example.org, port: 443, throughput: {path: /large, bytes: 4MiB}}
                  by-address: {address: 192.0.2.1, host: example.org, port: 443,
                               throughput: {bytes: 1000}}
            """
        )
    )
    eps = config.services["s"].endpoints
    assert Check.THROUGHPUT not in eps["plain"].checks
    assert eps["listed"].checks == (Check.DNS, Check.TCP, Check.TLS, Check.HTTP, Check.THROUGHPUT)
    # without its own path the download asks for the http check's
    assert eps["listed"].throughput == ThroughputOptions(
        path="/health", bytes=DEFAULT_THROUGHPUT_BYTES
    )
    assert eps["implied"].checks[-1] is Check.THROUGHPUT
    assert eps["implied"].throughput == ThroughputOptions(path="/large", bytes=4 * 1024 * 1024)
    assert eps["by-address"].checks == (Check.TCP, Check.TLS, Check.HTTP, Check.THROUGHPUT)
    assert eps["by-address"].throughput.bytes == 1000
    assert config.throttling == Throttling(
        ratio=0.1, baseline_rounds=0, min_bytes_per_second=2 * 1024 * 1024
    )
    assert parse_yaml(SERVICES).throttling == Throttling()


# ---- the quic check

QUIC_BAD = [
    (
        "quic-options",
        y(
            """
            services:
              s:
                endpoints:
                  a: {host: example.org, port: 443, quic: {port: 70000, http3: "yes", h3: true}}
                  b: {host: example.org, port: 443, quic: true}
                  c: {host: example.org, port: 443, checks: [tcp, tls], quic: {}}
                  d: {host: example.org, port: 443, checks: [quic], tls: {}, http: {}}
                  e: {host: example.org, port: 443, checks: [quic], quic: {http3: false},
                      http: {path: /}}
            """
        ),
        {
            "services.s.endpoints.a.quic.port: 70000 is not a port (1-65535)",
            'services.s.endpoints.a.quic.http3: expected true or false, got "yes"',
            "services.s.endpoints.a.quic.h3: unknown key (allowed: port, http3)",
            "services.s.endpoints.b.quic: expected a mapping of QUIC options (port, http3), got "
            "true",
            "services.s.endpoints.c.quic: QUIC options given but quic is not in checks",
            "services.s.endpoints.d.http: HTTP options given but http is not in checks (nor "
            "quic with http3: true)",
            "services.s.endpoints.e.http: HTTP options given but http is not in checks (nor "
            "quic with http3: true)",
        },
    ),
    (
        "quic-through-a-proxy",
        y(
            """
            resolvers:
              doh: {type: doh, url: "https://1.1.1.1/dns-query"}
            networks:
              direct: {}
              tor: {proxy: "socks5://127.0.0.1:9050"}
            services:
              s:
                endpoints:
                  a: {host: example.org, port: 443, quic: {}}
                  b: {address: 192.0.2.1, port: 443, checks: [quic]}
                  c: {address: 192.0.2.1, port: 443, checks: [quic], networks: [tor]}
                  d: {host: example.org, port: 443, checks: [dns, quic], networks: [tor]}
            canaries:
              x: {address: 192.0.2.2, port: 443, checks: [tcp, quic]}
            """
        ),
        {
            "services.s.endpoints.c: the quic check cannot be made through any of its networks "
            "(a SOCKS proxy carries only TCP); add tcp checks or a network without a proxy",
            "services.s.endpoints.d: the quic check cannot be made through any of its networks "
            "(a SOCKS proxy carries only TCP); add tcp checks or a network without a proxy",
        },
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(t, e) for _, t, e in QUIC_BAD],
    ids=[i for i, _, _ in QUIC_BAD],
)
def test_quic_errors(text: str, expected: set[str]) -> None:
    assert error_lines(text) == expected


def test_quic_is_opt_in_and_its_options_resolve() -> None:
    from exporter.config.model import QuicOptions

    config = parse_yaml(
        y(
            """
            services:
              s:
                endpoints:
                  plain: {host: example.org, port: 443}
                  implied: {host: example.org, port: 443, quic: {http3: true},
                            http: {path: /health}}
                  listed: {host: example.org, port: 443, checks: [tcp, tls, http, quic]}
                  alone: {host: example.org, port: 443, checks: [quic],
                          tls: {insecure_skip_verify: true}}
                  h3-only: {host: example.org, port: 8443, checks: [quic],
                            quic: {http3: true, port: 443}, http: {expect_status: [2xx]}}
                  by-address: {address: 192.0.2.1, port: 443, quic: {}}
            """
        )
    )
    eps = config.services["s"].endpoints
    assert Check.QUIC not in eps["plain"].checks
    assert eps["plain"].quic == QuicOptions()
    assert eps["implied"].checks == (Check.DNS, Check.TCP, Check.TLS, Check.HTTP, Check.QUIC)
    assert eps["implied"].quic == QuicOptions(http3=True)
    assert eps["implied"].http.path == "/health"
    assert eps["listed"].checks[-1] is Check.QUIC
    assert eps["alone"].checks == (Check.DNS, Check.QUIC)  # a host is resolved first
    assert eps["alone"].tls.insecure_skip_verify  # the QUIC handshake's TLS options
    assert eps["h3-only"].quic == QuicOptions(port=443, http3=True)
    assert eps["by-address"].checks == (Check.TCP, Check.QUIC)


# ---- metrics options (issue 7: what the phase histograms cover)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "metrics: {phase_histograms: off}\n",
            "metrics.phase_histograms: expected one of tuple, endpoint, none, got false",
        ),
        (
            "metrics: {phase_histograms: per_endpoint}\n",
            'metrics.phase_histograms: expected one of tuple, endpoint, none, got "per_endpoint"',
        ),
        (
            "metrics: {histograms: none}\n",
            "metrics.histograms: unknown key (allowed: phase_histograms)",
        ),
        (
            "metrics: endpoint\n",
            'metrics: expected a mapping of metrics options (phase_histograms), got "endpoint"',
        ),
    ],
    ids=["yaml-false", "unknown-value", "unknown-key", "not-a-mapping"],
)
def test_metrics_option_errors(text: str, expected: str) -> None:
    assert error_lines(text + SERVICES) == {expected}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "endpoint"),
        ("metrics: {}\n", "endpoint"),
        ("metrics: {phase_histograms: tuple}\n", "tuple"),
        ("metrics: {phase_histograms: endpoint}\n", "endpoint"),
        ("metrics: {phase_histograms: none}\n", "none"),
    ],
)
def test_phase_histograms_default_per_endpoint(text: str, expected: str) -> None:
    from exporter.config.model import PhaseHistograms

    assert parse_yaml(text + SERVICES).metrics.phase_histograms is PhaseHistograms(expected)
