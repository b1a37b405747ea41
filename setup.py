"""Build the Cython extensions in ``cext/`` into ``riskengine._*`` modules.

Compiler directives are set once here. ``RISKENGINE_DEBUG=1`` rebuilds with bounds checks,
wraparound checks, line tracing (``CYTHON_TRACE_NOGIL``) and ``-O0 -g`` for debugging and
coverage; ``RISKENGINE_ANNOTATE=1`` writes Cython's annotated HTML next to the sources.
"""

import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("RISKENGINE_DEBUG", "0") == "1"
ANNOTATE = os.environ.get("RISKENGINE_ANNOTATE", "0") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "linetrace": DEBUG,
    "profile": False,
}

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
# -ffp-contract=off: no fused multiply-add, so the compiled engine rounds exactly like the
# plain-Python reference engine (parity to the last bit) on every CPU.
compile_args = ["-ffp-contract=off"]
if DEBUG:
    macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    compile_args += ["-O0", "-g"]
else:
    compile_args += ["-O3"]

extensions = [
    Extension(
        f"riskengine.{pyx.stem}",
        [str(pyx)],
        include_dirs=[np.get_include()],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
    for pyx in sorted(Path("cext/riskengine").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["cext"],
        compiler_directives=directives,
        annotate=ANNOTATE,
        # generated C lives apart per mode, so switching the debug switch regenerates it
        build_dir=f"build/cython-{'debug' if DEBUG else 'release'}",
    ),
)
