import sys

from simfit.cli import main

sys.exit(main())
