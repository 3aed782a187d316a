import sys

from starter.devstack.stack import main

sys.exit(main())
