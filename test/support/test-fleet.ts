// The simulated fleet lives in src/sim so `fleet demo` can use it too; tests import it from here.
export * from '../../src/sim/fleet.js'
