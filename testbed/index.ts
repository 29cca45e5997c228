/** The testbed's public surface, for the CLI, the demo and tests elsewhere. */
export { type Clock, ManualClock, systemClock } from './clock.ts';
export { type Decision, decide, type Fate } from './engine.ts';
export { normalize } from './matching.ts';
export {
  loadPolicyFile,
  type Policy,
  PolicyError,
  parsePolicy,
  policyFromObject,
  type Rule,
} from './policy.ts';
export { startTestbed, type Testbed, type TestbedOptions } from './server.ts';
