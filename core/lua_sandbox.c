/* Sandboxed Lua states: see lua_sandbox.h. */
#include "lua_sandbox.h"
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

/* Why not a larger interval: with any count hook set, Lua 5.4 traps every VM
 * instruction (luaG_traceexec) and only calls the hook every HOOK_EVERY;
 * the trap is the cost (about a third of default.lua's route()), and 1000
 * and 10000 measure the same, so keep the finer budget granularity. */
#define HOOK_EVERY 1000

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    llmux_lua_sandbox *sb = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        sb->mem_used -= old;
        return NULL;
    }
    /* Shrinking never fails; growing past the cap returns NULL, which Lua
     * turns into a "not enough memory" error after an emergency GC. */
    if (nsize > old && sb->mem_limit && sb->mem_used - old + nsize > sb->mem_limit)
        return NULL;
    void *np = realloc(ptr, nsize);
    if (!np)
        return NULL;
    sb->mem_used = sb->mem_used - old + nsize;
    if (sb->mem_used > sb->mem_peak)
        sb->mem_peak = sb->mem_used;
    return np;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    llmux_lua_sandbox *sb = llmux_sandbox_of(L);
    if (!sb || !sb->budget)
        return;
    sb->remaining -= sb->exhausted ? 1 : HOOK_EVERY;
    if (sb->remaining < 0) {
        /* From now on raise at every instruction: a script that catches the
         * error with pcall gets it again right after the pcall returns, so
         * the error always reaches our own lua_pcall. */
        if (!sb->exhausted) {
            sb->exhausted = 1;
            lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        }
        luaL_error(L, "instruction budget exceeded");
    }
}

/* load(chunk [, chunkname [, mode [, env]]]) restricted to text strings. */
static int safe_load(lua_State *L)
{
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    if (!s || lua_type(L, 1) != LUA_TSTRING) {
        luaL_pushfail(L);
        lua_pushliteral(L, "load: only source strings are allowed");
        return 2;
    }
    const char *name = luaL_optstring(L, 2, s);
    int env = !lua_isnone(L, 4) ? 4 : 0;
    int st = luaL_loadbufferx(L, s, len, name, "t");
    if (st != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env) {
        lua_pushvalue(L, env);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

static int open_libs(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},         {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table},   {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},   {NULL, NULL},
    };
    for (const luaL_Reg *l = libs; l->func; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    static const char *const drop[] = {"dofile", "loadfile", "print", "require", NULL};
    for (int i = 0; drop[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, drop[i]);
    }
    lua_pushcfunction(L, safe_load);
    lua_setglobal(L, "load");
    /* string.dump produces bytecode: useless here and only helps probing. */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    /* math.random is fine, but seed deterministically per state is not
     * needed: Lua 5.4 seeds randomly. */
    return 0;
}

llmux_lua_sandbox *llmux_sandbox_new(size_t mem_limit, uint32_t instruction_budget)
{
    llmux_lua_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb)
        return NULL;
    sb->mem_limit = mem_limit;
    sb->budget = instruction_budget;
    sb->remaining = instruction_budget;
    sb->L = lua_newstate(capped_alloc, sb);
    if (!sb->L) {
        free(sb);
        return NULL;
    }
    *(llmux_lua_sandbox **)lua_getextraspace(sb->L) = sb;
    lua_pushcfunction(sb->L, open_libs);
    if (lua_pcall(sb->L, 0, 0, 0) != LUA_OK) {
        lua_close(sb->L);
        free(sb);
        return NULL;
    }
    if (instruction_budget)
        lua_sethook(sb->L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
    return sb;
}

void llmux_sandbox_free(llmux_lua_sandbox *sb)
{
    if (!sb)
        return;
    lua_close(sb->L);
    free(sb);
}

llmux_lua_sandbox *llmux_sandbox_of(lua_State *L)
{
    return *(llmux_lua_sandbox **)lua_getextraspace(L);
}

void llmux_sandbox_reset_budget(llmux_lua_sandbox *sb)
{
    sb->remaining = sb->budget;
    if (sb->exhausted) {
        sb->exhausted = 0;
        lua_sethook(sb->L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
    }
}

int llmux_sandbox_load(llmux_lua_sandbox *sb, const char *buf, size_t len, const char *chunkname)
{
    return luaL_loadbufferx(sb->L, buf, len, chunkname, "t");
}

int llmux_sandbox_pcall(llmux_lua_sandbox *sb, int nargs, int nresults)
{
    llmux_sandbox_reset_budget(sb);
    int st = lua_pcall(sb->L, nargs, nresults, 0);
    if (st != LUA_OK) {
        /* Give back whatever the failed call built; with the cap reached a
         * GC is what makes the next call possible. */
        lua_gc(sb->L, LUA_GCCOLLECT);
    }
    return st;
}
