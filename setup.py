from setuptools import setup

setup(cffi_modules=["csrc/build_rt.py:ffibuilder"], zip_safe=False)
