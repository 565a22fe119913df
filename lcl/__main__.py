import sys

from lcl.cli import main

sys.exit(main())
