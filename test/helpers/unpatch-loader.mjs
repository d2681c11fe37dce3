// A webpack loader for test/integration/rollout.test.ts: bundles the workflows with one
// `patched('<id>')` guard replaced by `true`, i.e. the change shipped without its patch, as a
// careless rollout would. Plain JavaScript because webpack loads loaders with require().
export default function unpatch(source) {
  const { patchId } = this.getOptions();
  return source.split(`patched('${patchId}')`).join('true');
}
