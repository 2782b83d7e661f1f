from devtools.engines import free_port


def test_a_port_is_never_handed_out_twice() -> None:
    # A stack takes a port for each of its servers before any of them binds:
    # the system could offer one of them again meanwhile, and two servers of
    # a test were then given one port (a service's metrics server answered
    # the gateway's requests).
    ports = [free_port() for _ in range(2000)]

    assert len(set(ports)) == len(ports)
