-- llmux default routing policy: OpenRouter's provider routing.
--
-- route(request, candidates) returns the ordered plan of candidate indices to
-- try, or nil plus a message and an HTTP status when no endpoint can serve
-- the request. Candidates arrive grouped by model: the primary model's
-- endpoints in configured order, then each `models` fallback's endpoints.
-- See scripts/README.md for every field and for the policy in prose.
--
-- Steps:
--   1. eligibility: capabilities the request needs (tools, images,
--      structured output, context length, the :thinking/:free/:extended
--      variants) and the `provider` object's filters (only, ignore,
--      quantizations, data_collection, zdr, max_price, require_parameters);
--   2. per model, in model order: `provider.order` first, then `sort`
--      (price / throughput / latency, or the :nitro / :floor variants), or
--      else default balancing: one endpoint chosen at random weighted by
--      1 / price^2 (prompt-cache stickiness first), the rest by price;
--   3. health: endpoints that failed within the failure window go after the
--      healthy ones of their model; endpoints with an open circuit or parked
--      by a Retry-After go to the very end; with allow_fallbacks = false they
--      are dropped (unless nothing else is left). preferred_min_throughput /
--      preferred_max_latency deprioritise, never exclude.
--
-- Everything per candidate that does not change between calls (price,
-- weight, lower-cased names) is computed once per candidate table.

local random = math.random
local type, next, ipairs, pairs = type, next, ipairs, pairs
local sort = table.sort
local concat = table.concat

local FREE_WEIGHT = 1e30      -- zero-priced endpoints: the cheapest of all
local STICKY_CAP = 4096       -- prompt-cache entries per generation (two kept)

-- Top-level request fields that are model parameters: with
-- require_parameters every one present must be in supported_parameters.
local MODEL_PARAMETERS = {
  temperature = true, top_p = true, top_k = true, min_p = true, top_a = true,
  frequency_penalty = true, presence_penalty = true, repetition_penalty = true,
  seed = true, stop = true, logit_bias = true, logprobs = true, top_logprobs = true,
  max_tokens = true, max_completion_tokens = true, response_format = true,
  structured_outputs = true, tools = true, tool_choice = true,
  parallel_tool_calls = true, reasoning = true, include_reasoning = true,
  verbosity = true, web_search_options = true,
}
-- Endpoints list max_tokens for both spellings.
local PARAMETER_ALIAS = { max_completion_tokens = "max_tokens" }

-- ---------------------------------------------------------------------------
-- Per-candidate facts, computed once per candidate table.
-- ---------------------------------------------------------------------------

local lower_memo = {}
local function lower(s)
  local l = lower_memo[s]
  if not l then
    l = s:lower()
    lower_memo[s] = l
  end
  return l
end

local facts = setmetatable({}, { __mode = "k" })
local function facts_of(c)
  local f = facts[c]
  if f then return f end
  local p = c.pricing
  local price = (p.prompt or 0) + (p.completion or 0)
  f = {
    price = price,
    weight = price > 0 and 1 / (price * price) or FREE_WEIGHT,
    free = c.tags.free == true
      or ((p.prompt or 0) == 0 and (p.completion or 0) == 0 and (p.request or 0) == 0),
    id = lower(c.provider),
    name = lower(c.provider_name or c.provider),
    lists_parameters = next(c.supported_parameters) ~= nil,
  }
  facts[c] = f
  return f
end

-- ---------------------------------------------------------------------------
-- The request: preferences and needs, normalised once per call.
-- ---------------------------------------------------------------------------

local function lower_set(list)
  if type(list) ~= "table" then return nil end
  local set = {}
  for _, v in ipairs(list) do
    if type(v) == "string" then set[v:lower()] = true end
  end
  return set
end

-- A preferred_* value: a number, or an object of percentiles ({p50 = ...}).
local function threshold(v)
  if type(v) == "number" then return v end
  if type(v) == "table" then
    return tonumber(v.p50) or tonumber(v.p75) or tonumber(v.p90) or tonumber(v.p99)
  end
  return nil
end

local NO_PREFS = {
  order = {}, rank = {}, allow_fallbacks = true, filters = false,
}

local function preferences(provider, variant)
  if provider == nil and variant == nil then return NO_PREFS end
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
  local by = provider.sort
  if type(by) == "table" then by = by.by end
  if by ~= "price" and by ~= "throughput" and by ~= "latency" then by = nil end
  if variant == "nitro" then by = "throughput"
  elseif variant == "floor" then by = "price" end
  local mp = type(provider.max_price) == "table" and provider.max_price or nil
  local quant = lower_set(provider.quantizations)
  if quant and next(quant) == nil then quant = nil end
  local p = {
    order = order,
    rank = rank,
    only = lower_set(provider.only),
    ignore = lower_set(provider.ignore),
    allow_fallbacks = provider.allow_fallbacks ~= false,
    sort = by,
    max_price = mp,
    quantizations = quant,
    deny_data = provider.data_collection == "deny",
    zdr = provider.zdr == true,
    require_parameters = provider.require_parameters == true,
    min_throughput = threshold(provider.preferred_min_throughput),
    max_latency_s = threshold(provider.preferred_max_latency),
    free = variant == "free",
    extended = variant == "extended",
  }
  if p.ignore and next(p.ignore) == nil then p.ignore = nil end
  p.filters = p.only ~= nil or p.ignore ~= nil or mp ~= nil or quant ~= nil or p.deny_data
    or p.zdr or p.require_parameters or p.free or p.extended
  return p
end

-- The model parameters the request uses (for require_parameters).
local function used_parameters(request)
  local list = {}
  for k in pairs(request.parameters) do
    if MODEL_PARAMETERS[k] then list[#list + 1] = PARAMETER_ALIAS[k] or k end
  end
  return list
end

-- ---------------------------------------------------------------------------
-- Step 1: eligibility.
-- ---------------------------------------------------------------------------

-- What the request needs, read once per call (request fields are cheap to
-- read once, not per candidate). Module-level scratch, refilled by route().
local need = { tools = false, response_format = false, thinking = false, images = false, est = 0 }

-- What the request needs that candidate c lacks, as a list of phrases for
-- the 404 message (nil when it can serve the request). An endpoint that
-- lists no supported_parameters at all is taken to support every parameter.
local function missing_capabilities(c, f, out)
  local sp = c.supported_parameters
  local n = 0
  if f.lists_parameters then
    if need.tools and not sp.tools then
      n = n + 1; if out then out[n] = "tools" end
    end
    if need.response_format and not (sp.response_format or sp.structured_outputs) then
      n = n + 1; if out then out[n] = "structured output (response_format)" end
    end
    if need.thinking and not (sp.reasoning or sp.include_reasoning) then
      n = n + 1; if out then out[n] = "reasoning (:thinking)" end
    end
  end
  if need.images and not c.input_modalities.image then
    n = n + 1; if out then out[n] = "image input" end
  end
  local ctx = c.context_length
  if ctx > 0 and need.est > ctx then
    n = n + 1; if out then out[n] = "context" end
  end
  return n
end

-- The first provider preference candidate c fails, or nil.
local function failed_preference(prefs, c, f, params)
  if prefs.free and not f.free then return "free" end
  if prefs.extended and not c.tags.extended then return "extended" end
  local only = prefs.only
  if only and not (only[f.id] or only[f.name]) then return "only" end
  local ignore = prefs.ignore
  if ignore and (ignore[f.id] or ignore[f.name]) then return "ignore" end
  if prefs.deny_data and c.data_collection ~= "deny" then return "data_collection" end
  if prefs.zdr and not c.zdr then return "zdr" end
  local q = prefs.quantizations
  if q and not q[c.quantization and lower(c.quantization) or "unknown"] then
    return "quantizations"
  end
  local mp = prefs.max_price
  if mp then
    local p = c.pricing
    -- prompt / completion: USD per million tokens (pricing is per token);
    -- request / image: USD per request / per image.
    if (tonumber(mp.prompt) and p.prompt * 1e6 > tonumber(mp.prompt) + 1e-9)
      or (tonumber(mp.completion) and p.completion * 1e6 > tonumber(mp.completion) + 1e-9)
      or (tonumber(mp.request) and p.request > tonumber(mp.request))
      or (tonumber(mp.image) and p.image > tonumber(mp.image)) then
      return "max_price"
    end
  end
  if params and f.lists_parameters then
    local sp = c.supported_parameters
    for i = 1, #params do
      if not sp[params[i]] then return "require_parameters" end
    end
  end
  return nil
end

local function model_list(candidates)
  local seen, list = {}, {}
  for i = 1, #candidates do
    local m = candidates[i].model
    if not seen[m] then
      seen[m] = true
      list[#list + 1] = m
    end
  end
  return concat(list, ", ")
end

local PREFERENCE_TEXT = {
  free = "is free (:free)",
  extended = "is an extended-context endpoint (:extended)",
}

-- Nothing is eligible: say why (404 when the request needs something no
-- endpoint has, 503 when the provider preferences ruled everything out).
local function refusal(request, prefs, candidates, params)
  local models = model_list(candidates)
  local lacking, capable = {}, false
  local missing_everywhere
  for i = 1, #candidates do
    local c = candidates[i]
    local miss = {}
    missing_capabilities(c, facts_of(c), miss)
    if #miss == 0 then capable = true end
    local set = {}
    for _, m in ipairs(miss) do
      set[m] = true
      if not lacking[m] then
        lacking[m] = true
        lacking[#lacking + 1] = m
      end
    end
    if missing_everywhere == nil then
      missing_everywhere = set
    else
      for m in pairs(missing_everywhere) do
        if not set[m] then missing_everywhere[m] = nil end
      end
    end
  end
  if not capable then
    local names = {}
    for _, m in ipairs(lacking) do
      if missing_everywhere and missing_everywhere[m] then names[#names + 1] = m end
    end
    local together = ""
    if #names == 0 then names, together = lacking, " together" end
    for k, m in ipairs(names) do
      if m == "context" then
        names[k] = string.format("a context of %d tokens (estimated prompt %d + max_tokens %d)",
          request.estimated_prompt_tokens + request.max_tokens,
          request.estimated_prompt_tokens, request.max_tokens)
      end
    end
    return nil, string.format("no endpoint of %s supports %s%s", models,
      concat(names, " and "), together), 404
  end
  -- capable endpoints exist: the preferences excluded them
  local why, seen = {}, {}
  for i = 1, #candidates do
    local c = candidates[i]
    local f = facts_of(c)
    if missing_capabilities(c, f) == 0 then
      local p = failed_preference(prefs, c, f, params)
      if p and not seen[p] then
        seen[p] = true
        why[#why + 1] = p
      end
    end
  end
  if #why == 0 then why[1] = "order with allow_fallbacks = false" end
  if #why == 1 and PREFERENCE_TEXT[why[1]] then
    return nil, string.format("no endpoint of %s %s", models, PREFERENCE_TEXT[why[1]]), 404
  end
  return nil, string.format(
    "no endpoint of %s meets the routing requirements (provider preferences: %s)",
    models, concat(why, ", ")), 503
end

-- ---------------------------------------------------------------------------
-- Prompt-cache stickiness: conversation prefix -> endpoint that served it.
-- A bounded two-generation LRU: entries live in `cur`; when it is full it
-- becomes `old` (still readable, promoted on use) and a new `cur` starts.
-- ---------------------------------------------------------------------------

local sticky_cur, sticky_old, sticky_n = {}, {}, 0

local function sticky_get(h)
  local e = sticky_cur[h]
  if e then return e end
  e = sticky_old[h]
  if e then
    sticky_old[h] = nil
    sticky_n = sticky_n + 1
    sticky_cur[h] = e
  end
  return e
end

local function sticky_put(h, e)
  if sticky_cur[h] == nil then
    if sticky_n >= STICKY_CAP then
      sticky_old, sticky_cur, sticky_n = sticky_cur, {}, 0
    end
    sticky_n = sticky_n + 1
  end
  sticky_cur[h] = e
end

local function sticky_drop(h)
  if sticky_cur[h] then
    sticky_cur[h] = nil
    sticky_n = sticky_n - 1
  end
  sticky_old[h] = nil
end

-- ---------------------------------------------------------------------------
-- Step 2/3: ordering within a model, health.
-- ---------------------------------------------------------------------------

-- Tiers: 0 healthy, 1 healthy but misses a preferred_* threshold,
-- 2 failed within the window (or probing), 3 down (open / parked).
local function tier_of(prefs, c)
  local s = c.stats
  if s.circuit == "open" or s.parked_for_s > 0 then return 3 end
  if s.recent_failure or s.circuit == "half_open" then return 2 end
  local mt = prefs.min_throughput
  if mt and s.throughput > 0 and s.throughput < mt then return 1 end
  local ml = prefs.max_latency_s
  if ml and s.ttft_ms > 0 and s.ttft_ms > ml * 1000 then return 1 end
  return 0
end

-- Candidates of one model sorted by weight (= price ascending), stable in
-- configured order; cached per group (candidate tables are reused per
-- config generation, so the first table identifies the group).
local by_weight_cache = setmetatable({}, { __mode = "k" })
local function by_weight(group, first, last)
  local key = group[first]
  local e = by_weight_cache[key]
  if e and e.n == last - first + 1 and e.last == group[last] then return e end
  local list = {}
  for i = first, last do list[#list + 1] = group[i] end
  -- insertion sort: stable, and groups are small
  for i = 2, #list do
    local c = list[i]
    local w = facts_of(c).weight
    local j = i - 1
    while j >= 1 and facts_of(list[j]).weight < w do
      list[j + 1] = list[j]
      j = j - 1
    end
    list[j + 1] = c
  end
  local weights, total = {}, 0
  for i = 1, #list do
    weights[i] = facts_of(list[i]).weight
    total = total + weights[i]
  end
  e = { n = #list, last = group[last], list = list, weights = weights, total = total }
  by_weight_cache[key] = e
  return e
end

local function stat_sort(list, by)
  -- unknown (0) stats go last; ties keep configured order
  if by == "throughput" then
    sort(list, function(a, b)
      local x, y = a.stats.throughput, b.stats.throughput
      if x ~= y then return x > y end
      return a.index < b.index
    end)
  else
    sort(list, function(a, b)
      local x, y = a.stats.ttft_ms, b.stats.ttft_ms
      if x == 0 then x = 1 / 0 end
      if y == 0 then y = 1 / 0 end
      if x ~= y then return x < y end
      return a.index < b.index
    end)
  end
end

-- Plan state for one call (module-level scratch, refilled every call):
-- tiers[candidate] is the tier of an eligible candidate, false otherwise
-- (weak keys: tables of an older config generation are not kept alive).
local tiers = setmetatable({}, { __mode = "k" })
local tail = {}
local dropped = {}   -- model -> true when a candidate of it is not tier 0
local out = {}       -- the returned plan, reused (the core copies it at once)
local out_n = 0

-- The common case, in a few instructions per candidate and without
-- allocating: no provider object, no variant, no capability to check, one
-- model, every candidate within its context length. Health tiers as in the
-- general path (no preferred_* thresholds here, so no tier 1). It makes
-- exactly the plan (and the same math.random draw) the general path below
-- would; nil when the case does not apply.
local tier_at = {}   -- tier of candidates[i] (c.index == i), refilled per call
local down = {}      -- tier 3 candidates, in candidate order

local function simple_plan(request, candidates, n)
  local model = candidates[1].model
  if candidates[n].model ~= model then return nil end
  local est = request.estimated_prompt_tokens + request.max_tokens
  local n2, nt = 0, 0
  for i = 1, n do
    local c = candidates[i]
    local ctx = c.context_length
    if (ctx ~= 0 and est > ctx) or c.index ~= i then
      for k = nt, 1, -1 do down[k] = nil end
      return nil
    end
    local s = c.stats
    local circuit = s.circuit
    local t = 0
    if circuit == "open" or s.parked_for_s > 0 then
      t = 3
      nt = nt + 1; down[nt] = c
    elseif circuit == "half_open" or s.recent_failure then
      t = 2
      n2 = n2 + 1
    end
    tier_at[i] = t
  end
  local clean = nt == 0 and n2 == 0
  local e = by_weight(candidates, 1, n)
  local ordered, weights, m = e.list, e.weights, e.n
  local pick, pk
  local h = request.prefix_hash
  if h then
    local sticky = sticky_get(h)
    if sticky and sticky.label == (request.key_label or "") and sticky.model == model then
      for i = 1, m do
        local c = ordered[i]
        if c.id == sticky.id and (clean or tier_at[c.index] == 0) then
          pick, pk = c, i
          break
        end
      end
    end
  end
  if not pick then
    local sum = 0
    if clean then
      sum = e.total
    else
      for i = 1, m do
        if tier_at[ordered[i].index] == 0 then sum = sum + weights[i] end
      end
    end
    if not (sum > 0) then
      for k = nt, 1, -1 do down[k] = nil end
      return nil
    end
    local x = random() * sum
    for i = 1, m do
      local c = ordered[i]
      if clean or tier_at[c.index] == 0 then
        pick, pk = c, i
        x = x - weights[i]
        if x < 0 then break end
      end
    end
  end
  local plan = out
  plan[1] = pick.index
  local np = 1
  if clean then
    for i = 1, m do
      if i ~= pk then
        np = np + 1; plan[np] = ordered[i].index
      end
    end
  else
    for i = 1, m do
      local x = ordered[i].index
      if i ~= pk and tier_at[x] == 0 then
        np = np + 1; plan[np] = x
      end
    end
    if n2 > 0 then
      for i = 1, m do
        local x = ordered[i].index
        if tier_at[x] == 2 then
          np = np + 1; plan[np] = x
        end
      end
    end
    for k = 1, nt do
      np = np + 1; plan[np] = down[k].index
      down[k] = nil
    end
  end
  for i = np + 1, out_n do plan[i] = nil end -- what the last call left
  out_n = np
  return plan
end

function route(request, candidates)
  local n = #candidates
  local provider, variant = request.provider, request.variant
  local has_tools, has_images, has_rf = request.has_tools, request.has_images,
    request.has_response_format
  if provider == nil and variant == nil and not (has_tools or has_images or has_rf) and n > 0 then
    local plan = simple_plan(request, candidates, n)
    if plan then return plan end
  end
  local prefs = preferences(provider, variant)
  local params = prefs.require_parameters and used_parameters(request) or nil
  local checks_caps = has_tools or has_images or has_rf or variant == "thinking"
  local est = request.estimated_prompt_tokens + request.max_tokens
  need.tools, need.images, need.response_format = has_tools, has_images, has_rf
  need.thinking, need.est = variant == "thinking", est
  local min_tp, max_lat = prefs.min_throughput, prefs.max_latency_s
  if max_lat then max_lat = max_lat * 1000 end

  -- Step 1: eligibility and health tiers. Down endpoints (tier 3) go
  -- straight to the tail, in candidate order.
  local ne, nt, n12 = 0, 0, 0
  local filters = prefs.filters
  for k in next, dropped do dropped[k] = nil end
  for i = 1, n do
    local c = candidates[i]
    local f = facts[c] or facts_of(c)
    local ok
    if checks_caps then
      ok = missing_capabilities(c, f) == 0
    else
      local ctx = c.context_length
      ok = ctx == 0 or est <= ctx
    end
    if ok and filters and failed_preference(prefs, c, f, params) then ok = false end
    if ok then
      ne = ne + 1
      local s = c.stats
      local circuit = s.circuit
      local t = 0
      if circuit == "open" or s.parked_for_s > 0 then
        t = 3
        nt = nt + 1
        tail[nt] = c
      elseif circuit == "half_open" or s.recent_failure then
        t = 2
      elseif min_tp or max_lat then
        local tp, ttft = s.throughput, s.ttft_ms
        if (min_tp and tp > 0 and tp < min_tp) or (max_lat and ttft > max_lat) then t = 1 end
      end
      tiers[c] = t
      if t ~= 0 then
        dropped[c.model] = true
        if t ~= 3 then n12 = n12 + 1 end
      end
    else
      tiers[c] = false
      dropped[c.model] = true
    end
  end
  if ne == 0 then return refusal(request, prefs, candidates, params) end

  -- Step 2: per model group, in model order.
  local plan = out
  local np = 0
  local rank, norder = prefs.rank, #prefs.order
  local allow = prefs.allow_fallbacks
  local by = prefs.sort
  local h = request.prefix_hash
  local sticky = h and sticky_get(h)
  if sticky and sticky.label ~= (request.key_label or "") then sticky = nil end

  local first = 1
  while first <= n do
    local model = candidates[first].model
    local last = first
    if candidates[n].model == model and last < n then
      last = n -- one model (the common case): no need to look at each
    end
    while last < n and candidates[last + 1].model == model do last = last + 1 end
    local gstart = np + 1
    local listed = nil

    -- provider.order: the listed providers first, in that order
    if norder > 0 then
      listed = {}
      for r = 1, norder do
        for i = first, last do
          local c = candidates[i]
          local t = tiers[c]
          if t then
            local f = facts[c]
            if (rank[f.id] or rank[f.name]) == r then
              listed[c] = true
              if t ~= 3 then
                np = np + 1; plan[np] = i
              end
            end
          end
        end
      end
    end

    if allow or norder == 0 then
      -- the others: sorted, or balanced
      local ordered, weights, m
      local clean = not dropped[model] and not listed
      if by == "throughput" or by == "latency" then
        ordered = {}
        for i = first, last do
          if tiers[candidates[i]] then ordered[#ordered + 1] = candidates[i] end
        end
        stat_sort(ordered, by)
        m = #ordered
      else
        local e = by_weight(candidates, first, last)
        ordered, weights, m = e.list, e.weights, e.n
        if by == nil then
          -- default balancing: the sticky endpoint, or weighted random in tier 0
          local pick, pk = nil, 0
          if sticky and sticky.model == model then
            for i = 1, m do
              local c = ordered[i]
              if c.id == sticky.id and tiers[c] == 0 and not (listed and listed[c]) then
                pick, pk = c, i
                break
              end
            end
          end
          if not pick then
            local sum = 0
            if clean then
              sum = e.total
            else
              for i = 1, m do
                local c = ordered[i]
                if tiers[c] == 0 and not (listed and listed[c]) then sum = sum + weights[i] end
              end
            end
            if sum > 0 then
              local x = random() * sum
              for i = 1, m do
                local c = ordered[i]
                if clean or (tiers[c] == 0 and not (listed and listed[c])) then
                  pick, pk = c, i
                  x = x - weights[i]
                  if x < 0 then break end
                end
              end
            end
          end
          if pick then
            np = np + 1; plan[np] = pick.index
            -- the rest of tier 0 by price
            for i = 1, m do
              local c = ordered[i]
              if i ~= pk and (clean or (tiers[c] == 0 and not (listed and listed[c]))) then
                np = np + 1; plan[np] = c.index
              end
            end
            ordered = (not clean) and ordered or nil
          end
        end
      end
      if ordered then
        for t = (by == nil) and 1 or 0, (n12 > 0) and 2 or 0 do
          for i = 1, m do
            local c = ordered[i]
            if tiers[c] == t and not (listed and listed[c]) then
              np = np + 1; plan[np] = c.index
            end
          end
        end
      end
    end

    if not allow and np >= gstart then
      -- no fallbacks: with order only the listed providers (above), without
      -- order only the model's first choice; sick endpoints only if nothing
      -- healthy is left
      local keep = gstart - 1
      for i = gstart, np do
        local x = plan[i]
        if tiers[candidates[x]] < 2 and (norder > 0 or keep < gstart) then
          keep = keep + 1
          plan[keep] = x
        end
      end
      if keep < gstart then keep = norder > 0 and np or gstart end
      for i = keep + 1, np do plan[i] = nil end
      np = keep
    end
    first = last + 1
  end

  -- Step 3: down endpoints last (without fallbacks: only if nothing else).
  if allow or np == 0 then
    for i = 1, nt do
      np = np + 1; plan[np] = tail[i].index
    end
  end
  for i = nt, 1, -1 do tail[i] = nil end
  for i = np + 1, out_n do plan[i] = nil end -- what the last call left
  out_n = np
  if np == 0 then return refusal(request, prefs, candidates, params) end
  return plan
end

-- The core calls this after each request with the candidate that answered
-- (ok) or failed last: remember which endpoint holds this conversation's
-- prompt cache.
function on_result(request, candidate, ok)
  local h = request.prefix_hash
  if not h then return end
  if ok then
    sticky_put(h, { label = request.key_label or "", model = candidate.model, id = candidate.id })
  else
    local e = sticky_get(h)
    if e and e.id == candidate.id then sticky_drop(h) end
  end
end
