"""seqbench: one import name for the whole project.

The repository keeps `architectures/`, `tasks/` and `harness/` at its top level; they are the
subpackages `seqbench.architectures`, `seqbench.tasks` and `seqbench.harness`. A wheel or an
editable install maps them through `package-dir` (pyproject.toml). In a plain source checkout
that was never installed (pytest from the repository root, `python -m seqbench`), the three
folders sit beside this one, so the repository root joins this package's search path; that is
only done when the folders are not already inside the package (a wheel) and the root is a
seqbench checkout (it holds this package's pyproject.toml).

`seqbench.errors`, `seqbench.registry` and `seqbench.seeds` are the little that
`architectures` and `tasks` share; they import nothing of theirs. Plugins import from
`seqbench.api` only.

Importing seqbench asks MKL for products that do not depend on the number of threads
(`seqbench.reproducible`), so the same run gives the same numbers under every launcher.
"""

from pathlib import Path as _Path

from seqbench.reproducible import ask_for_thread_independent_blas as _ask

__version__ = "0.1.0"
_ask()

_here = _Path(__file__).resolve().parent
_root = _here.parent
if (
    not (_here / "architectures").is_dir()
    and (_root / "architectures" / "__init__.py").is_file()
    and (_root / "pyproject.toml").is_file()
    and str(_root) not in __path__
):
    __path__.append(str(_root))
del _Path, _ask, _here, _root
