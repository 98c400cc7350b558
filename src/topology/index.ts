/**
 * `windshift/topology`: reading a declared topology from a file
 * (`windshift.yaml`, or JSON), for `events.plan` and `events.apply` in
 * deploy scripts. A subpath of its own, so that `import "windshift"` does not
 * load the YAML parser.
 *
 * @module
 */

export { loadTopology } from "./load.js";
export type { ConsumerDeclaration, StreamDeclaration, Topology } from "./topology.js";
