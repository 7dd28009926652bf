/* rys command-line entry: dispatch to one subcommand per file. */
#include "cli/cli.h"
#include "base/util.h"

#include <stdio.h>
#include <string.h>

static const cli_command commands[] = {
    {"info", cmd_info, "show a model's metadata, tensors and layer path"},
    {"run", cmd_run, "generate text from a prompt along a layer path"},
    {"logits", cmd_logits, "write a prompt's logits as .npy (for reference checks)"},
    {"perplexity", cmd_perplexity, "perplexity of a text file, llama.cpp's definition"},
    {"eval", cmd_eval, "score one layer path on probe sets (math, EQ)"},
    {"scan", cmd_scan, "score every layer configuration of a sweep into a SQLite store"},
    {"prescreen", cmd_prescreen, "rank every single block from activation statistics in seconds, before any scan"},
    {"beam", cmd_beam, "beam search over block compositions, seeded by a scan, into its store"},
    {"report", cmd_report, "heatmaps, skylines, rankings and Pareto front of a scan, as PNG/SVG and index.html"},
    {"hellaswag", cmd_hellaswag, "HellaSwag accuracy, scored as llama.cpp does"},
    {"pull", cmd_pull, "download a known model into the cache, checked by sha256"},
    {"models", cmd_models, "list the known models and which are cached"},
    {"data", cmd_data, "pull and list benchmark data (ARC, HellaSwag, MMLU, ...), show its documents"},
    {"tokenize", cmd_tokenize, "text to token ids with a model's tokenizer"},
    {"export", cmd_export, "write a relayered model as GGUF or a Hugging Face directory"},
    {"probes", cmd_probes, "generate math probe sets, check probe files, score a text"},
    {"bench", cmd_bench, "prompt, decode and batched-decode speed, kernel path, limits reached"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server over a model's layer paths"},
    {"pipeline", cmd_pipeline, "scan, beam, surrogate, validation and report in one resumable run under a time budget"},
    {"validate", cmd_validate, "standard benchmarks (ARC, HellaSwag, MMLU, ...) along the baseline and relayered paths"},
    {"surrogate", cmd_surrogate, "train the XGBoost surrogate on a scan store; rank a million candidate paths with it"},
};

static void usage(FILE *f) {
    fprintf(f, "rys %s: run language models along repeated layer paths, scan and export them\n\n", RYS_VERSION);
    fprintf(f, "usage: rys COMMAND [options]   (rys COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 1; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) { printf("rys %s\n", RYS_VERSION); return 0; }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "rys: unknown command '%s' (try rys --help)\n", argv[1]);
    return 1;
}
