"""Crashes the worker in C: reads address 0 (SIGSEGV), as a broken C extension would."""
import ctypes


def application(environ, start_response):
    ctypes.string_at(0)
