import sys

from facetory_cam.cli import main

sys.exit(main())
