"""Example user layers for `scratch verify`: a correct NumPy conv layer and a broken one.

scratch verify scratch/verify/examples/conv_numpy.py:Conv2d --like Conv2d
scratch verify scratch/verify/examples/conv_numpy_broken.py:Conv2d --like Conv2d --out out/
"""
