/* rngprobe: what the kernel RNG says, asked before any interpreter runs.
 *
 *   rngprobe probe LABEL                 one getrandom(GRND_NONBLOCK) call
 *   rngprobe run LABEL SECONDS CMD ARGS  run CMD, killed after SECONDS
 *
 * Each prints one line "@@PEP522 probe|run {json}" on stdout, which the host
 * reads from the serial console.  Times are CLOCK_MONOTONIC seconds, the
 * clock of the kernel log's timestamps and of Python's time.monotonic().
 *
 * Linked statically, so the answer comes before the interpreter's shared
 * libraries are ever loaded, and made with the raw system call, so that no
 * libc wrapper or vDSO can answer in the kernel's place.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef GRND_NONBLOCK
#define GRND_NONBLOCK 0x0001
#endif

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *
errno_name(int err)
{
    switch (err) {
    case 0: return "";
    case EAGAIN: return "EAGAIN";
    case ENOSYS: return "ENOSYS";
    case EPERM: return "EPERM";
    case EINTR: return "EINTR";
    default: return "other";
    }
}

/* Exit status 0: not ready (EAGAIN), 1: ready, 2: getrandom failed otherwise. */
static int
probe(const char *label)
{
    unsigned char byte;
    long got = syscall(SYS_getrandom, &byte, 1, GRND_NONBLOCK);
    int err = got < 0 ? errno : 0;
    const char *state = got == 1 ? "ready" : err == EAGAIN ? "not-ready" : "error";

    printf("@@PEP522 probe {\"label\": \"%s\", \"state\": \"%s\", "
           "\"errno\": \"%s\", \"t\": %.3f}\n", label, state, errno_name(err), now());
    fflush(stdout);
    return got == 1 ? 1 : err == EAGAIN ? 0 : 2;
}

static volatile sig_atomic_t timed_out;

static void
on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
}

static int
run(const char *label, unsigned seconds, char **argv)
{
    double start = now(), end;
    int status = 0, code;
    struct sigaction sa = {.sa_handler = on_alarm};
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("rngprobe: fork");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        perror("rngprobe: exec");
        _exit(127);
    }
    /* no SA_RESTART: the alarm has to interrupt waitpid() */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            break;
        if (timed_out)
            kill(pid, SIGKILL);   /* the next waitpid() reaps it */
    }
    alarm(0);
    end = now();
    code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    printf("@@PEP522 run {\"label\": \"%s\", \"start\": %.3f, \"end\": %.3f, "
           "\"seconds\": %.3f, \"exit\": %d, \"timed_out\": %s}\n",
           label, start, end, end - start, code, timed_out ? "true" : "false");
    fflush(stdout);
    return code < 0 ? 128 - code : code;
}

int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "probe") == 0)
        return probe(argv[2]);
    if (argc >= 5 && strcmp(argv[1], "run") == 0)
        return run(argv[2], (unsigned)strtoul(argv[3], NULL, 10), argv + 4);
    fprintf(stderr, "usage: rngprobe probe LABEL | run LABEL SECONDS CMD [ARGS...]\n");
    return 2;
}
