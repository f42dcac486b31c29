// calosim's CaloGAN readout as a compiled Geant4 stepping action (no Python per step).
//
// Every step's energy deposit, in any volume and material (absorber and gap alike, no sampling fraction), is
// added to the cell that holds the step's PRE-step point (the convention of CaloGAN's SteppingAction.cc):
//   layer l = first l with z < zmax[l] (the last layer takes the rest);
//   x, y cells of width 2 * half / nx[l], 2 * half / ny[l] over the open window (-half, half) mm, row index
//   along x, column index along y; a point outside the window goes to overflow[l].
// Buffer layout: the layers' cells in order (row-major, ix * ny + iy), then one overflow cell per layer. MeV.
//
// Built WITHOUT the Geant4 headers (the geant4-pybind wheel does not ship them): the few declarations below
// reproduce the ABI of the classes used, for Geant4 11.4 as compiled into geant4-pybind 0.1.3 (x86-64 Itanium
// ABI). Checked against that binary: vtable for G4UserSteppingAction = 6 slots (offset, RTTI, 2 destructors,
// SetSteppingManagerPointer, UserSteppingAction); G4Step::G4Step() stores the two new G4StepPoints at offsets
// 0x10 / 0x18; G4Step starts with G4double fTotalEnergyDeposit and G4StepPoint with G4ThreeVector fPosition.
// tests/test_geant4.py compares this scorer with the Python one (calosim/geant4/engine.py) bit for bit; the
// engine only uses it with geant4-pybind 0.1.3 and falls back to the Python scorer otherwise.
#include <cmath>
#include <cstring>

class G4SteppingManager;

class G4StepPoint {  // only the leading member is used
 public:
  double x, y, z;  // G4ThreeVector fPosition (mm)
};

class G4Step {  // only the leading members are used
 public:
  double fTotalEnergyDeposit;          // MeV
  double fNonIonizingEnergyDeposit;
  G4StepPoint* fpPreStepPoint;
  G4StepPoint* fpPostStepPoint;
};

class G4UserSteppingAction {
 public:
  G4UserSteppingAction();  // exported by the extension module (checks that the physics list is ready)
  virtual ~G4UserSteppingAction() {}
  virtual void SetSteppingManagerPointer(G4SteppingManager* p) { fpSteppingManager = p; }
  virtual void UserSteppingAction(const G4Step*) {}

 protected:
  G4SteppingManager* fpSteppingManager = nullptr;
};

class G4RunManager {  // exported non-virtual symbols only; never instantiated here
 public:
  static G4RunManager* GetRunManager();
  void SetUserAction(G4UserSteppingAction* action);  // called non-virtually: binds to the exported symbol
};

namespace {
constexpr int kMaxLayers = 8;
constexpr int kMaxCells = 1 << 16;
int gLayers = 0, gCells = 0;
double gZmax[kMaxLayers], gHalf = 240.0, gDx[kMaxLayers], gDy[kMaxLayers];
int gNx[kMaxLayers], gNy[kMaxLayers], gOffset[kMaxLayers];
double gEdep[kMaxCells];
long long gSteps = 0;

inline int CellOf(double x, double y, double z) {
  int layer = 0;
  while (layer < gLayers - 1 && !(z < gZmax[layer])) ++layer;
  if (!(x > -gHalf && x < gHalf && y > -gHalf && y < gHalf)) return gCells + layer;
  int ix = static_cast<int>(std::floor((x + gHalf) / gDx[layer]));
  int iy = static_cast<int>(std::floor((y + gHalf) / gDy[layer]));
  if (ix >= gNx[layer]) ix = gNx[layer] - 1;  // rounding guard at the upper edge
  if (iy >= gNy[layer]) iy = gNy[layer] - 1;
  return gOffset[layer] + ix * gNy[layer] + iy;
}

class Scorer : public G4UserSteppingAction {
 public:
  void UserSteppingAction(const G4Step* step) override {
    const G4StepPoint* p = step->fpPreStepPoint;
    gEdep[CellOf(p->x, p->y, p->z)] += step->fTotalEnergyDeposit;
    ++gSteps;
  }
};
}  // namespace

extern "C" {
// Set the readout: nlayers layers, zmax[l] upper depth edges (mm, the last one unused), nx/ny cells per layer,
// window half-width (mm). Returns the buffer length (cells + one overflow per layer) or -1 if too large.
int calosim_configure(int nlayers, const double* zmax, const int* nx, const int* ny, double half) {
  if (nlayers < 1 || nlayers > kMaxLayers) return -1;
  int cells = 0;
  for (int l = 0; l < nlayers; ++l) {
    gZmax[l] = zmax[l];
    gNx[l] = nx[l];
    gNy[l] = ny[l];
    gDx[l] = 2.0 * half / nx[l];
    gDy[l] = 2.0 * half / ny[l];
    gOffset[l] = cells;
    cells += nx[l] * ny[l];
  }
  if (cells + nlayers > kMaxCells) return -1;
  gLayers = nlayers;
  gCells = cells;
  gHalf = half;
  std::memset(gEdep, 0, sizeof(gEdep));
  return cells + nlayers;
}

// Install the scorer as the run manager's stepping action (after the action initialisation). 0 on success.
int calosim_install() {
  G4RunManager* rm = G4RunManager::GetRunManager();
  if (!rm || gLayers == 0) return -1;
  rm->SetUserAction(static_cast<G4UserSteppingAction*>(new Scorer));
  return 0;
}

double* calosim_buffer() { return gEdep; }
void calosim_reset() { std::memset(gEdep, 0, sizeof(double) * (gCells + gLayers)); }
long long calosim_steps() { return gSteps; }
int calosim_cell_of(double x, double y, double z) { return CellOf(x, y, z); }
}
