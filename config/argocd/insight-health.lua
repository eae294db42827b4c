-- Argo CD health check for tapio.io/Insight (resource.customizations.health.tapio.io_Insight).
-- An active Critical or Warning finding is Degraded (it needs a person), an active Info one and a resolved one
-- are Healthy; an Insight whose status was not written yet is Progressing.
local hs = {status = "Progressing", message = "Waiting for the first status write"}
if obj.status == nil or obj.status.phase == nil then
  return hs
end
local title = (obj.spec and obj.spec.title) or ""
local severity = (obj.spec and obj.spec.severity) or "Info"
if obj.status.phase == "Resolved" then
  hs.status = "Healthy"
  hs.message = "Resolved: " .. title
  return hs
end
if severity == "Critical" or severity == "Warning" then
  hs.status = "Degraded"
else
  hs.status = "Healthy"
end
hs.message = severity .. ": " .. title
return hs
