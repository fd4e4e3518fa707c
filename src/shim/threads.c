/*
 * func_presencestate_rs — the module's own threads (the expiry and cluster threads).
 *
 * Started here through Asterisk (ast_pthread_create_stack: they show in `core show threads`),
 * not with Rust's std::thread: std's spawn registers a thread-local destructor, owned by this
 * module's copy of std, on the *starting* thread (an Asterisk CLI, AMI or start-up thread that
 * outlives the unload), and glibc then refuses to unmap the module at dlclose. Joined here,
 * so the thread's own thread-local destructors have run before the join returns.
 */
#include "func_presencestate_rs.h"

/* The stack std::thread gave them (Asterisk's default is 496 KB): libcpg's cpg_dispatch alone
 * puts a 1 MB buffer on the cluster thread's stack. */
#define FPRS_THREAD_STACK (2 * 1024 * 1024)

struct fprs_thread {
	pthread_t id;
	char name[16];              /* the kernel's limit, NUL included */
	void (*run)(void *);
	void *arg;
};

static void *thread_main(void *data)
{
	struct fprs_thread *thread = data;

	thread->run(thread->arg);
	return NULL;
}

struct fprs_thread *fprs_shim_thread_start(const char *name, void (*run)(void *), void *arg)
{
	struct fprs_thread *thread = ast_calloc(1, sizeof(*thread));

	if (!thread) {
		return NULL;
	}
	ast_copy_string(thread->name, name, sizeof(thread->name));
	thread->run = run;
	thread->arg = arg;
	if (ast_pthread_create_stack(&thread->id, NULL, thread_main, thread, FPRS_THREAD_STACK,
			__FILE__, __FUNCTION__, __LINE__, thread->name)) {
		ast_free(thread);
		return NULL;
	}
	/* Named here, not by the thread itself: named once the start returns (tests look). */
	pthread_setname_np(thread->id, thread->name);
	return thread;
}

void fprs_shim_thread_join(struct fprs_thread *thread)
{
	pthread_join(thread->id, NULL);
	ast_free(thread);
}
