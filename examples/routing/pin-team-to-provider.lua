-- Pin a team (the label of its API key) to one provider.
--
-- A pinned team's requests go to its provider's endpoints only; if that
-- provider is down for the model (open circuit or parked), they fail over to
-- the other endpoints only when the team allows it. Unpinned keys get the
-- configured order. Useful for contracts ("team X's data only goes to Y").
--
-- routing_script = "examples/routing/pin-team-to-provider.lua"

local PINS = {
  ["team-research"] = { provider = "pricey", fallback = false },
  ["team-support"] = { provider = "cheap", fallback = true },
}

local function up(c)
  return c.stats.circuit ~= "open" and c.stats.parked_for_s <= 0
end

function route(request, candidates)
  local pin = request.key_label and PINS[request.key_label]
  if not pin then
    local plan = {}
    for i = 1, #candidates do plan[i] = i end
    return plan
  end
  local mine, others = {}, {}
  for _, c in ipairs(candidates) do
    if c.provider == pin.provider then
      mine[#mine + 1] = c.index
    elseif pin.fallback then
      others[#others + 1] = c.index
    end
  end
  if #mine == 0 and not pin.fallback then
    return nil, string.format("team %s is pinned to provider %s, which does not serve %s",
      request.key_label, pin.provider, request.model), 404
  end
  local plan = {}
  local healthy_mine = false
  for _, i in ipairs(mine) do
    if up(candidates[i]) then healthy_mine = true end
    plan[#plan + 1] = i
  end
  if healthy_mine or pin.fallback then
    for _, i in ipairs(others) do plan[#plan + 1] = i end
  end
  return plan
end
