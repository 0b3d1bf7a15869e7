import sys

from linecube.cli import main

sys.exit(main())
