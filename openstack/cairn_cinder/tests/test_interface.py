"""Cinder's interface check for CairnDriver (as cinder/tests/compliance does for in-tree
drivers): ``cinder.interface.util.get_volume_drivers()`` lists it and it satisfies
``VolumeDriverCore``; its options are the ones cinder.conf documents."""

from cinder.interface import util
from cinder.interface import volume_driver
from cinder.tests.unit import test
from cinder.volume import driver as cinder_driver

from cairn_cinder import driver as cairn_driver


class CairnInterfaceTest(test.TestCase):
    """The driver as Cinder's registry and interface check see it."""

    def test_listed_by_get_volume_drivers(self):
        """get_volume_drivers() lists cairn_cinder.driver.CairnDriver with its
        version and options."""
        infos = {repr(d): d for d in util.get_volume_drivers()}
        self.assertIn('cairn_cinder.driver.CairnDriver', infos)
        info = infos['cairn_cinder.driver.CairnDriver']
        self.assertEqual('1.0.0', info.version)
        names = {o.name for o in info.driver_options}
        for name in ('cairn_api_addresses', 'cairn_api_token', 'cairn_verify_tls',
                     'cairn_pool', 'cairn_replicas', 'cairn_nvmf_portals'):
            self.assertIn(name, names)

    def test_conforms_to_volume_driver_core(self):
        """CairnDriver is a VolumeDriverCore (the compliance test's assertion) and a
        cinder.volume.driver.VolumeDriver / BaseVD."""
        self.assertTrue(issubclass(cairn_driver.CairnDriver,
                                   volume_driver.VolumeDriverCore))
        self.assertTrue(issubclass(cairn_driver.CairnDriver,
                                   cinder_driver.VolumeDriver))
        self.assertTrue(issubclass(cairn_driver.CairnDriver, cinder_driver.BaseVD))

    def test_token_is_secret(self):
        """cairn_api_token is a secret option (masked in Cinder's logs)."""
        opts = {o.name: o for o in cairn_driver.CairnDriver.get_driver_options()}
        self.assertTrue(opts['cairn_api_token'].secret)
