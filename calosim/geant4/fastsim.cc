// calosim's fast simulation inside Geant4: a G4VFastSimulationModel attached to the calorimeter's region.
//
// Geant4's fast-simulation machinery does the work: G4FastSimulationPhysics (registered from Python) puts the
// G4FastSimulationManagerProcess on e-, e+ and gamma; at the start of every step of those particles inside the
// calorimeter's region it asks this model's ModelTrigger; when that says yes, the step is the model's DoIt.
//   IsApplicable: e-, e+, gamma.
//   ModelTrigger: the particle enters through the calorimeter's front face (its position within kFaceTolerance
//     of z = front and its direction has dz > 0: the showers a CaloGAN model describes start there, as its
//     training showers did) with kinetic energy >= threshold. Inside the model's training range it triggers;
//     outside (above threshold) it does not: Geant4 transports the particle and the fallback is counted.
//   DoIt: reports (kinetic energy MeV, entry position mm, direction, PDG code) to the callback Python set
//     (calosim/geant4/fastsim.py), which samples the model's shower at that energy and adds its cells to the
//     event's readout buffer, then kills the particle (G4FastStep::KillPrimaryTrack: no energy left to Geant4).
//
// Built WITHOUT the Geant4 headers (the geant4-pybind wheel does not ship them, nor binds G4VFastSimulationModel
// to Python), like scorer.cc: the declarations below reproduce the ABI of Geant4 11.4 as compiled into
// geant4-pybind 0.1.3 (x86-64 Itanium ABI). Checked against that binary's disassembly:
//   G4VFastSimulationModel vtable (G4FastSimulationManager::PostStepGetFastSimulationManagerTrigger,
//     InvokePostStepDoIt, FlushModels): 2 destructors, IsApplicable +0x10, ModelTrigger +0x18, DoIt +0x20,
//     AtRestModelTrigger, AtRestDoIt, Flush +0x38; members G4String theModelName, G4bool fIsUnique.
//   G4FastSimulationManager: constructor (G4Region*, G4bool) exported (it registers itself with the region and
//     the global manager); its ModelList (G4FastSimulationVector = vptr + std::vector) has the vector at +0x248;
//     the object ends before +0x2d0 (the constructor's last store is at +0x2c0).
//   G4FastTrack: const G4Track* fTrack at +0 (G4FastTrack::SetCurrentTrack).
//   G4Track: G4ThreeVector fPosition at +0, G4DynamicParticle* at +0x50 (SetCurrentTrack, the trigger above);
//   G4DynamicParticle: momentum direction at +0, G4ParticleDefinition* at +0x30, kinetic energy at +0x50.
// The engine only builds this with geant4-pybind 0.1.3 (calosim/geant4/scorer.py, ABI_CHECKED).
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

class G4ParticleDefinition;
class G4Region;

class G4String : public std::string {  // Geant4 11: a std::string with methods only
 public:
  using std::string::string;
};

class G4Electron { public: static G4ParticleDefinition* Definition(); };
class G4Positron { public: static G4ParticleDefinition* Definition(); };
class G4Gamma { public: static G4ParticleDefinition* Definition(); };

class G4RegionStore {
 public:
  static G4RegionStore* GetInstance();
  G4Region* GetRegion(const G4String& name, bool verbose = true) const;
};

class G4FastTrack;  // read through FastTrackView below

class G4FastStep {
 public:
  void KillPrimaryTrack();  // exported: kinetic energy 0, status fStopAndKill
};

class G4VFastSimulationModel {
 public:
  explicit G4VFastSimulationModel(const G4String& name) : theModelName(name) {}
  virtual ~G4VFastSimulationModel() = default;
  virtual bool IsApplicable(const G4ParticleDefinition&) = 0;
  virtual bool ModelTrigger(const G4FastTrack&) = 0;
  virtual void DoIt(const G4FastTrack&, G4FastStep&) = 0;
  virtual bool AtRestModelTrigger(const G4FastTrack&) { return false; }
  virtual void AtRestDoIt(const G4FastTrack&, G4FastStep&) {}
  virtual void Flush() {}

 private:
  G4String theModelName;
  bool fIsUnique = false;
};

class G4FastSimulationManager {
 public:
  G4FastSimulationManager(G4Region* envelope, bool isUnique);  // exported
  void AddModel(G4VFastSimulationModel* model) {               // the header's inline AddFastSimulationModel
    reinterpret_cast<std::vector<G4VFastSimulationModel*>*>(storage_ + kModelListOffset)->push_back(model);
  }

 private:
  static constexpr std::size_t kModelListOffset = 0x248;
  alignas(16) unsigned char storage_[0x400];  // the real object needs 0x2d0 bytes
};

namespace {
struct DynamicParticleView {
  double direction[3];
  double polarization[3];
  const G4ParticleDefinition* definition;
  const void* unused[3];
  double kinetic_energy;  // MeV
};
static_assert(offsetof(DynamicParticleView, definition) == 0x30, "G4DynamicParticle layout");
static_assert(offsetof(DynamicParticleView, kinetic_energy) == 0x50, "G4DynamicParticle layout");

struct TrackView {
  double position[3];  // mm
  double times_length_velocity[4];
  const void* touchables[3];
  const DynamicParticleView* particle;
};
static_assert(offsetof(TrackView, particle) == 0x50, "G4Track layout");

const TrackView& TrackOf(const G4FastTrack& fast_track) {
  return **reinterpret_cast<const TrackView* const*>(&fast_track);
}

typedef void (*DepositCallback)(double energy_mev, double x, double y, double z, double dx, double dy, double dz,
                                int pdg);
constexpr double kFaceTolerance = 1e-3;  // mm: a boundary point lies within ~1e-9 mm of the face
double gThreshold = 0.0, gLow = 0.0, gHigh = 0.0, gFrontZ = 0.0;  // MeV, MeV, MeV, mm
DepositCallback gCallback = nullptr;
long long gTriggered = 0, gFallbacks = 0;

class CaloGANFastSim : public G4VFastSimulationModel {
 public:
  CaloGANFastSim()
      : G4VFastSimulationModel("calosim"),
        electron_(G4Electron::Definition()),
        positron_(G4Positron::Definition()),
        gamma_(G4Gamma::Definition()) {}

  bool IsApplicable(const G4ParticleDefinition& particle) override {
    return &particle == electron_ || &particle == positron_ || &particle == gamma_;
  }

  bool ModelTrigger(const G4FastTrack& fast_track) override {
    const TrackView& track = TrackOf(fast_track);
    const double energy = track.particle->kinetic_energy;
    if (!(energy >= gThreshold)) return false;
    if (!(std::fabs(track.position[2] - gFrontZ) <= kFaceTolerance && track.particle->direction[2] > 0.0)) {
      return false;  // not entering through the front face
    }
    if (energy < gLow || energy > gHigh) {
      ++gFallbacks;  // outside the model's training range: Geant4 transports it
      return false;
    }
    return true;
  }

  void DoIt(const G4FastTrack& fast_track, G4FastStep& fast_step) override {
    const TrackView& track = TrackOf(fast_track);
    const DynamicParticleView& p = *track.particle;
    const int pdg = p.definition == electron_ ? 11 : p.definition == positron_ ? -11 : 22;
    ++gTriggered;
    if (gCallback) {
      gCallback(p.kinetic_energy, track.position[0], track.position[1], track.position[2], p.direction[0],
                p.direction[1], p.direction[2], pdg);
    }
    fast_step.KillPrimaryTrack();
  }

 private:
  const G4ParticleDefinition* electron_;
  const G4ParticleDefinition* positron_;
  const G4ParticleDefinition* gamma_;
};
}  // namespace

extern "C" {
// Trigger settings: threshold and the model's training range [low, high] (MeV), front face z (mm), and the
// function DoIt calls per triggered particle.
void calosim_fastsim_configure(double threshold_mev, double low_mev, double high_mev, double front_z_mm,
                               DepositCallback callback) {
  gThreshold = threshold_mev;
  gLow = low_mev;
  gHigh = high_mev;
  gFrontZ = front_z_mm;
  gCallback = callback;
}

// Attach the model to the region named `region` (after the detector is built, before the first event).
// 0 on success, -1 if there is no such region.
int calosim_fastsim_install(const char* region) {
  G4Region* envelope = G4RegionStore::GetInstance()->GetRegion(G4String(region), false);
  if (!envelope) return -1;
  auto* manager = new G4FastSimulationManager(envelope, false);  // owned by the region from now on
  manager->AddModel(new CaloGANFastSim);
  return 0;
}

// Particles fast-simulated and particles left to Geant4 for being outside the training range, since the last
// reset (the engine resets per event).
long long calosim_fastsim_triggered() { return gTriggered; }
long long calosim_fastsim_fallbacks() { return gFallbacks; }
void calosim_fastsim_reset() { gTriggered = gFallbacks = 0; }
}
