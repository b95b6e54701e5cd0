"""Install the Kestrel Jupyter kernelspec.

    python setup_kernel.py [--user | --sys-prefix | --prefix PATH]
"""

import sys

from kestrel_kernel.install import main

if __name__ == "__main__":
    sys.exit(main())
