"""
Installs the C{gateway} package and its twistd plugin.

C{twisted/plugins} has no C{__init__.py} (it would shadow Twisted's own
plugin package), so it is listed here by hand; C{make install} regenerates
Twisted's plugin cache afterwards.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["gateway", "gateway.*"]) + ["twisted.plugins"],
    package_data={"twisted": ["plugins/gateway_plugin.py"]},
    include_package_data=False,
)
