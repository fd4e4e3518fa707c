/*
 * func_presencestate_rs — optional Asterisk APIs, for the shim's files that use them
 * (src/shim/ari.c: res_ari and res_stasis; src/shim/sip.c: res_pjsip).
 *
 * The module must load and work without those modules (not installed, or noload), so it holds
 * no reference to their functions that the dynamic linker must resolve: each is a pointer, of
 * the type its header declares, looked up by name in Asterisk's global symbol scope
 * (dlsym(RTLD_DEFAULT), where the loader puts the symbols of modules such as res_ari and
 * res_pjsip) when the module loads, and fprs_shim_have_<feature>() tells Rust whether all of
 * a feature's were found before it registers anything that uses them.
 *
 * Not weak symbols: the dynamic linker binds those once, when the loader dlopens this module,
 * and at start-up the loader dlopens every module, in directory order, before it starts any,
 * so this one is dlopened before res_ari.so and res_pjsip.so and its weak references stayed
 * NULL with both running (measured here). AST_MODULE_INFO's .optional_modules makes Asterisk
 * start those modules before this one whenever they are to be loaded at all, and count this
 * module as their user while it is loaded (`module unload res_ari.so` / `res_pjsip.so` is
 * refused until this one is unloaded), so the pointers cannot dangle.
 */
#ifndef FPRS_SHIM_OPTIONAL_H
#define FPRS_SHIM_OPTIONAL_H

#include <dlfcn.h>

/* Declares the pointer optional_<name>, of the type of the header's declaration of name. */
#define FPRS_OPTIONAL(name) static __typeof__(&name) optional_##name
/* Looks name up into optional_<name>; true when found. */
#define RESOLVE(name) \
	((optional_##name = (__typeof__(&name)) dlsym(RTLD_DEFAULT, #name)) != NULL)

#endif
