"""python -m llama_cpp_runtime info | check | bench"""

import sys

from ._cli.main import main

sys.exit(main())
