export * from '../../src/sim/origin.js'
