/* Sandboxed Lua states shared by the config loader and the router: a capped
 * allocator, an instruction budget enforced by a count hook, and only the
 * pure libraries (base without file access or bytecode loading, string,
 * table, math, utf8). */
#ifndef LLMUX_LUA_SANDBOX_H
#define LLMUX_LUA_SANDBOX_H
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

typedef struct llmux_lua_sandbox {
    lua_State *L;
    size_t mem_used;     /* bytes currently allocated by the state */
    size_t mem_limit;    /* 0 = unlimited */
    size_t mem_peak;
    uint32_t budget;     /* instructions per protected call; 0 = unlimited */
    int64_t remaining;   /* instructions left in the current call */
    int exhausted;       /* budget blown: the hook fires on every instruction */
} llmux_lua_sandbox;

/* NULL on allocation failure (or if the libraries do not fit in mem_limit). */
llmux_lua_sandbox *llmux_sandbox_new(size_t mem_limit, uint32_t instruction_budget);
void llmux_sandbox_free(llmux_lua_sandbox *sb);
/* Refills the instruction budget; call before each call into script code. */
void llmux_sandbox_reset_budget(llmux_lua_sandbox *sb);
/* Loads a text chunk (binary chunks are refused). chunkname as for lua_load
 * ("@file" or "=name"). Leaves the function or an error message on the stack;
 * returns the lua_load status. */
int llmux_sandbox_load(llmux_lua_sandbox *sb, const char *buf, size_t len, const char *chunkname);
/* lua_pcall with a fresh budget. After an error (including LUA_ERRMEM and the
 * budget error) the state stays usable; a full GC is run to give memory back. */
int llmux_sandbox_pcall(llmux_lua_sandbox *sb, int nargs, int nresults);
/* The sandbox a lua_State belongs to. */
llmux_lua_sandbox *llmux_sandbox_of(lua_State *L);
#endif
