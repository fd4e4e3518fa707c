/*
 * func_presencestate_rs — the boundary between the C shim and the Rust FFI layer.
 *
 * fprs_shim_*: one-line C wrappers over Asterisk macros and inline functions, which Rust cannot
 *              call (they inject __FILE__, AST_MODULE_SELF or are static inline).
 * fprs_*:      entry points implemented in Rust (src/ffi/), called by Asterisk through the
 *              static structs of src/shim/shim.c.
 *
 * Both the shim and bindgen read this header, so the two sides cannot disagree on a signature.
 */
#ifndef FUNC_PRESENCESTATE_RS_H
#define FUNC_PRESENCESTATE_RS_H

#include "asterisk.h"
#include "asterisk/utils.h"
#include "asterisk/stringfields.h"
#include "asterisk/astdb.h"
#include "asterisk/cli.h"
#include "asterisk/config.h"
#include "asterisk/logger.h"
#include "asterisk/module.h"
#include "asterisk/pbx.h"
#include "asterisk/presencestate.h"
#include "asterisk/stasis.h"
#include "asterisk/strings.h"
#include "asterisk/test.h"

/* ---- Implemented in Rust ------------------------------------------------------------------ */

enum ast_module_load_result fprs_load(void);
int fprs_unload(void);
int fprs_reload(void);

int fprs_read(struct ast_channel *chan, const char *cmd, char *data, char *buf, size_t len);
int fprs_read2(struct ast_channel *chan, const char *cmd, char *data, struct ast_str **buf, ssize_t len);
int fprs_write(struct ast_channel *chan, const char *cmd, char *data, const char *value);
enum ast_presence_state fprs_provider(const char *data, char **subtype, char **message);

/* CLI handlers after CLI_INIT: they return RESULT_SUCCESS, RESULT_SHOWUSAGE or RESULT_FAILURE. */
int fprs_cli_list(int fd, int argc, const char *const *argv);
int fprs_cli_change(int fd, int argc, const char *const *argv);
#ifdef FPRS_CLUSTER
int fprs_cli_cluster(int fd, int argc, const char *const *argv);
#endif
/* The n-th state name completing word, from Asterisk's allocator, or NULL. */
char *fprs_cli_complete_state(const char *word, int n);

/* Test-framework tests (category /funcs/func_presencestate_rs/). */
enum ast_test_result_state fprs_test_parse_valid(struct ast_test *test);
enum ast_test_result_state fprs_test_parse_invalid(struct ast_test *test);
enum ast_test_result_state fprs_test_publish(struct ast_test *test);
enum ast_test_result_state fprs_test_base64(struct ast_test *test);
enum ast_test_result_state fprs_test_long_values(struct ast_test *test);
enum ast_test_result_state fprs_test_read_after_write(struct ast_test *test);

/* ---- Implemented in the C shim ------------------------------------------------------------ */

/* ast_log at level (__LOG_WARNING, ...) of len bytes of msg, never as a format. */
void fprs_shim_log(int level, const char *file, int line, const char *function,
	const char *msg, size_t len);
/* A NUL-terminated copy of len bytes from Asterisk's allocator (ast_free frees it), or NULL. */
char *fprs_shim_strndup(const char *bytes, size_t len);
void fprs_shim_free(void *ptr);
/* Sets *buf to len bytes; 0 when all of them fit within maxlen, -1 otherwise. */
int fprs_shim_str_set(struct ast_str **buf, ssize_t maxlen, const char *bytes, size_t len);
struct ast_str *fprs_shim_str_create(size_t init_len);
const char *fprs_shim_str_bytes(struct ast_str *buf, size_t *len);
void fprs_shim_cli_print(int fd, const char *bytes, size_t len);
#ifdef FPRS_CLUSTER
/* Calls each(data, name, value, line) for every variable of [category] in file (a config file
 * name); 0 (also when the file is missing), or -1 when the file does not parse. */
int fprs_shim_config_section(const char *file, const char *category,
	void (*each)(void *data, const char *name, const char *value, int lineno), void *data);
#endif

int fprs_shim_register_function(void);
int fprs_shim_unregister_function(void);
int fprs_shim_register_cli(void);
int fprs_shim_unregister_cli(void);
void fprs_shim_register_tests(void);
void fprs_shim_unregister_tests(void);

void fprs_shim_test_status(struct ast_test *test, const char *bytes, size_t len);
struct stasis_subscription *fprs_shim_subscribe_presence(stasis_subscription_cb callback, void *data);
/* Fills the fields of a presence-state message; -1 for any other message type. */
int fprs_shim_presence_message(struct stasis_message *msg, enum ast_presence_state *state,
	const char **provider, const char **subtype, const char **message);

#endif
