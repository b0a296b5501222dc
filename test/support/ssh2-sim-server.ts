export * from '../../src/sim/ssh2-server.js'
