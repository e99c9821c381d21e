-- llmux default routing policy.
--
-- route(request, candidates) returns the ordered list of candidate indices to
-- try. Candidates arrive grouped by model: the primary model's endpoints in
-- configured order, then each `models` fallback's endpoints, in that order.
-- See scripts/README.md for every field.
--
-- This stage implements: the `provider` object's order / only / ignore /
-- allow_fallbacks, and skipping endpoints that are down (open circuit or
-- parked by a Retry-After) unless nothing else is left.

local function lower_set(list)
  local set = {}
  if type(list) == "table" then
    for _, v in ipairs(list) do
      if type(v) == "string" then set[v:lower()] = true end
    end
  end
  return set
end

-- The provider preferences of the request, normalised.
local function preferences(provider)
  provider = type(provider) == "table" and provider or {}
  local order, rank = {}, {}
  if type(provider.order) == "table" then
    for _, slug in ipairs(provider.order) do
      if type(slug) == "string" and not rank[slug:lower()] then
        order[#order + 1] = slug:lower()
        rank[slug:lower()] = #order
      end
    end
  end
  return {
    order = order,
    rank = rank,
    only = provider.only ~= nil and lower_set(provider.only) or nil,
    ignore = lower_set(provider.ignore),
    allow_fallbacks = provider.allow_fallbacks ~= false,
  }
end

-- A provider may be named by its id ("openai") or display name ("OpenAI").
-- Lower-cased names are memoised: the set of names is bounded by the config.
local lower_memo = {}
local function lower(s)
  local l = lower_memo[s]
  if not l then
    l = s:lower()
    lower_memo[s] = l
  end
  return l
end

local function healthy(c)
  local s = c.stats
  return s.circuit ~= "open" and (s.parked_for_s or 0) <= 0
end

-- Candidates arrive grouped by model; calls fn(first, last) per group.
local function each_model_group(candidates, fn)
  local first = 1
  for i = 2, #candidates + 1 do
    local c = candidates[i]
    if not c or c.model ~= candidates[first].model then
      fn(first, i - 1)
      first = i
    end
  end
end

-- Within one model: the `order`-listed providers first, in that order, then
-- (if fallbacks are allowed) the others in configured order.
local function order_group(prefs, candidates, first, last, out)
  local buckets, rest = {}, {}
  local only, ignore, rank = prefs.only, prefs.ignore, prefs.rank
  for i = first, last do
    local c = candidates[i]
    -- (hot loop: the memo is read inline, lower() only fills it)
    local id = lower_memo[c.provider] or lower(c.provider)
    local name = c.provider_name or c.provider
    name = lower_memo[name] or lower(name)
    if (not only or only[id] or only[name]) and not (ignore[id] or ignore[name]) then
      local r = rank[id] or rank[name]
      if r then
        local b = buckets[r]
        if not b then b = {}; buckets[r] = b end
        b[#b + 1] = c
      else
        rest[#rest + 1] = c
      end
    end
  end
  for r = 1, #prefs.order do
    local b = buckets[r]
    if b then
      for _, c in ipairs(b) do out[#out + 1] = c end
    end
  end
  if prefs.allow_fallbacks then
    for _, c in ipairs(rest) do out[#out + 1] = c end
  elseif #prefs.order == 0 and rest[1] then
    -- no order given: the first endpoint is "the" provider, no backups
    out[#out + 1] = rest[1]
  end
end

-- The plan: indices of the endpoints that are up; the ones that are down
-- only if nothing else is left.
local function plan_of(list)
  local plan, n = {}, 0
  for i = 1, #list do
    local c = list[i]
    if healthy(c) then
      n = n + 1
      plan[n] = c.index
    end
  end
  if n == 0 then
    for i = 1, #list do plan[i] = list[i].index end
  end
  return plan
end

local function apply_preferences(prefs, candidates)
  if #prefs.order == 0 and not prefs.only and next(prefs.ignore) == nil
      and prefs.allow_fallbacks then
    return candidates -- nothing to do: configured order
  end
  local ordered = {}
  each_model_group(candidates, function(first, last)
    order_group(prefs, candidates, first, last, ordered)
  end)
  return ordered
end

function route(request, candidates)
  local prefs = preferences(request.provider)
  return plan_of(apply_preferences(prefs, candidates))
end
