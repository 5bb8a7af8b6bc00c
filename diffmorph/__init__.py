"""diffmorph: reference-point-free image morphing (a port of DiffMorph).

The heavy modules (TensorFlow) are imported lazily by their users; importing the
package itself is cheap so that ``diffmorph --version`` answers at once.
"""

from .version import __version__  # noqa: F401
