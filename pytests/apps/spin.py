"""Never returns: `while True: pass` (holds the GIL but for the switch interval)."""


def application(environ, start_response):
    while True:
        pass
