import os
import sys

# Quieten TensorFlow's C++ logging; must happen before tensorflow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Make the in-repo package importable under plain `pytest` too (not only `python -m pytest`).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
