"""The ``wsgihost`` command: the server, in this Python and its environment."""
import sys


def main():
    from wsgihost import native

    try:
        server = native()
    except ImportError as wrong_build:
        sys.exit(str(wrong_build))
    # The same process may return here as the master or as a worker it forked; either way
    # its exit code is the answer, and Python shuts down normally (atexit handlers run).
    sys.exit(server.run(["wsgihost", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
