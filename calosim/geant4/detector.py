"""The CaloGAN calorimeter, physics list and particle gun as Geant4 objects (reference section 1).

Geometry (hep-lbdl/CaloGAN generation/DetectorConstruction.cc): a vacuum world 1200 x 1200 x 576 mm holding
a vacuum box 1000 x 1000 x 480 mm (z in [-240, 240] mm) of 80 replicated 6 mm layers, each 2 mm G4_Pb
followed by 4 mm liquid argon (Z = 18, A = 39.95 g/mole, 1.390 g/cm3); no field. Gun: one particle at
(0, 0, -288) mm along +z. Readout (scorer.cc / scorer.py): every step's deposit at its pre-step point; z < -150
mm -> layer_0, z < 197 mm -> layer_1, else layer_2; x, y bins over (-240, 240) mm, outside -> overflow.

Everything that subclasses a Geant4 type is built by a function taking the imported ``geant4_pybind``
module, so that importing this file never imports Geant4 (see datasets.import_geant4).
"""

from __future__ import annotations

N_LAYERS = 80
ABSORBER_MM = 2.0
GAP_MM = 4.0
SIZE_XY_MM = 1000.0
GUN_Z_MM = -288.0
LAYER_ZMAX_MM = (-150.0, 197.0, 240.0)  # readout layer l holds pre-step points with z < LAYER_ZMAX_MM[l]
HALF_WIDTH_MM = 240.0
CALORIMETER_FRONT_Z_MM = -N_LAYERS * (ABSORBER_MM + GAP_MM) / 2  # -240 mm: where the primaries enter
PRODUCTION_CUT_MM = 0.7
PHYSICS_LISTS = {
    "FTFP_BERT_EMV": (
        "FTFP_BERT_EMV: the FTFP_BERT constructors with EM option 1 (G4EmStandardPhysics_option1 + "
        "G4EmExtraPhysics + G4DecayPhysics + G4HadronElasticPhysics + G4HadronPhysicsFTFP_BERT + "
        "G4StoppingPhysics + G4IonPhysics + G4NeutronTrackingCut), production cut 0.7 mm"),
}
DETECTOR_DESCRIPTION = (
    "CaloGAN: 80 x (2 mm G4_Pb + 4 mm liquid argon 1.390 g/cm3), 1000 x 1000 x 480 mm, z in [-240, 240] mm, "
    "vacuum world, no field; readout: every step's deposit (absorber and gap, no sampling fraction) at its "
    "pre-step point, z < -150 mm -> layer_0, z < 197 mm -> layer_1, else layer_2, x/y bins over (-240, 240) mm, "
    "outside -> overflow; gun at (0, 0, -288) mm along +z")


def build_detector(g4, region: str | None = None):
    """A G4VUserDetectorConstruction subclass instance for the CaloGAN calorimeter; with ``region``, the
    calorimeter volume (and so every layer in it) is the root of a G4Region of that name (for a
    fast-simulation model; give it the production cut with ``/run/setCutForRegion`` after the run manager's
    Initialize)."""

    class Detector(g4.G4VUserDetectorConstruction):
        def Construct(self):
            mm, g, mole, cm3 = g4.mm, g4.g, g4.mole, g4.cm3
            pb = g4.G4NistManager.Instance().FindOrBuildMaterial("G4_Pb")
            lar = g4.G4Material("liquidArgon", 18.0, 39.95 * g / mole, 1.390 * g / cm3)
            vac = g4.G4Material("Galactic", 1.0, 1.01 * g / mole, g4.universe_mean_density, g4.kStateGas,
                                2.73 * g4.kelvin, 3.0e-18 * g4.pascal)
            layer_t = (ABSORBER_MM + GAP_MM) * mm
            cal_t = N_LAYERS * layer_t
            xy = SIZE_XY_MM * mm
            keep = self._keep = [pb, lar, vac]  # Geant4 does not own what Python created

            def box(name, hx, hy, hz, material):
                solid = g4.G4Box(name, hx, hy, hz)
                logical = g4.G4LogicalVolume(solid, material, name)
                keep.extend([solid, logical])
                return logical

            world = box("World", 0.6 * xy, 0.6 * xy, 0.6 * cal_t, vac)
            world_pv = g4.G4PVPlacement(None, g4.G4ThreeVector(), world, "World", None, False, 0, False)
            cal = box("Calorimeter", xy / 2, xy / 2, cal_t / 2, vac)
            layer = box("Layer", xy / 2, xy / 2, layer_t / 2, vac)
            absorber = box("Abso", xy / 2, xy / 2, ABSORBER_MM * mm / 2, pb)
            gap = box("Gap", xy / 2, xy / 2, GAP_MM * mm / 2, lar)
            keep += [
                world_pv,
                g4.G4PVPlacement(None, g4.G4ThreeVector(), cal, "Calorimeter", world, False, 0, False),
                g4.G4PVReplica("Layer", layer, cal, g4.kZAxis, N_LAYERS, layer_t),
                g4.G4PVPlacement(None, g4.G4ThreeVector(0.0, 0.0, -GAP_MM * mm / 2), absorber, "Abso", layer,
                                 False, 0, False),
                g4.G4PVPlacement(None, g4.G4ThreeVector(0.0, 0.0, ABSORBER_MM * mm / 2), gap, "Gap", layer,
                                 False, 0, False),
            ]
            if region is not None:
                calorimeter_region = g4.G4Region(region)
                calorimeter_region.AddRootLogicalVolume(cal)
                keep.append(calorimeter_region)
            return world_pv

    return Detector()


def build_physics(g4, name: str = "FTFP_BERT_EMV", fast_simulation: tuple[str, ...] = ()):
    """The physics list ``name`` (see PHYSICS_LISTS) as a G4VModularPhysicsList instance; with
    ``fast_simulation`` (Geant4 particle names), G4FastSimulationPhysics puts the fast-simulation process on
    those particles, so that a G4VFastSimulationModel attached to a region can take them over there."""
    if name not in PHYSICS_LISTS:
        raise ValueError(f"unknown physics list {name!r}; choose one of {', '.join(PHYSICS_LISTS)}")

    class Physics(g4.G4VModularPhysicsList):
        def __init__(self):
            super().__init__()
            self.SetVerboseLevel(0)
            self.SetDefaultCutValue(PRODUCTION_CUT_MM * g4.mm)
            for ctor in (g4.G4EmStandardPhysics_option1, g4.G4EmExtraPhysics, g4.G4DecayPhysics,
                         g4.G4HadronElasticPhysics, g4.G4HadronPhysicsFTFP_BERT, g4.G4StoppingPhysics,
                         g4.G4IonPhysics, g4.G4NeutronTrackingCut):
                self.RegisterPhysics(ctor())
            if fast_simulation:
                fast = g4.G4FastSimulationPhysics()
                for particle in fast_simulation:
                    fast.ActivateFastSimulation(particle)
                self.RegisterPhysics(fast)

    return Physics()


def build_gun(g4, particle: str, state: dict):
    """A primary generator shooting ``particle`` (Geant4 name) from (0, 0, -288) mm along +z.

    Event i of a run gets kinetic energy state["energies_gev"][i] GeV; when state["seeds"] is set, the random
    engine is reseeded with state["seeds"][i] before the event is tracked (one seed per shower, so a shower does
    not depend on which process or chunk simulated it).
    """

    class Gun(g4.G4VUserPrimaryGeneratorAction):
        def __init__(self):
            super().__init__()
            self.gun = g4.G4ParticleGun(1)
            definition = g4.G4ParticleTable.GetParticleTable().FindParticle(particle)
            if definition is None:
                raise ValueError(f"Geant4 does not know the particle {particle!r}")
            self.gun.SetParticleDefinition(definition)
            self.gun.SetParticleMomentumDirection(g4.G4ThreeVector(0.0, 0.0, 1.0))
            self.gun.SetParticlePosition(g4.G4ThreeVector(0.0, 0.0, GUN_Z_MM * g4.mm))

        def GeneratePrimaries(self, event):
            i = event.GetEventID()
            if state.get("seeds") is not None:
                g4.G4Random.setTheSeed(int(state["seeds"][i]))
            self.gun.SetParticleEnergy(float(state["energies_gev"][i]) * g4.GeV)
            self.gun.GeneratePrimaryVertex(event)

    return Gun()
