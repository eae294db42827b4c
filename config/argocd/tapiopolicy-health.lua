-- Argo CD health check for tapio.io/TapioPolicy (resource.customizations.health.tapio.io_TapioPolicy).
-- Healthy once the operator accepted this generation and every targeted node's agent runs it; Progressing while
-- the operator has not judged this generation or agents are still picking it up; Degraded when the spec is
-- invalid or a node's agent runs with less than it should.
local hs = {status = "Progressing", message = "Waiting for the Tapio operator to judge the policy"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= nil and obj.status.observedGeneration < generation then
  hs.message = "The operator has not judged generation " .. generation .. " yet"
  return hs
end
local conditions = {}
for _, c in ipairs(obj.status.conditions) do
  conditions[c.type] = c
end
local accepted, ready, degraded = conditions["Accepted"], conditions["Ready"], conditions["Degraded"]
if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = accepted.message or accepted.reason or "The policy is not accepted"
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = degraded.message or degraded.reason or "Agents run the policy with less than they should"
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "All targeted nodes run the policy"
  return hs
end
if ready ~= nil and ready.reason == "NoNodesTargeted" then
  -- Valid, just nothing to run on yet (a node pool not scaled up): not a failure of the sync.
  hs.status = "Healthy"
  hs.message = ready.message or "No node matches spec.nodeSelector"
  return hs
end
if ready ~= nil and ready.message ~= nil then
  hs.message = ready.message
end
return hs
