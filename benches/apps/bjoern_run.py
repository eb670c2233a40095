"""bjoern has no CLI: python bjoern_run.py MODULE:APP PORT"""
import importlib
import sys

import bjoern

module, _, name = sys.argv[1].partition(":")
bjoern.run(getattr(importlib.import_module(module), name), "127.0.0.1", int(sys.argv[2]))
