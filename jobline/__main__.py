import sys

from jobline.cli import main

sys.exit(main())
