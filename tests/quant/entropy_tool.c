/* Reads a histogram ("width nbins [amax]" then nbins counts) from a file
 * and prints "i threshold" of the entropy search, for test_entropy.py. */
#include <stdio.h>
#include <stdlib.h>

#include "quant/quant.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: entropy_tool HIST\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    double w, amax;
    int n;
    if (!f || fscanf(f, "%lf %d %lf", &w, &n, &amax) != 3 || n <= 0 || n > (1 << 24)) {
        fprintf(stderr, "entropy_tool: cannot read %s\n", argv[1]);
        return 1;
    }
    double *c = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%lf", &c[i]) != 1) {
            fprintf(stderr, "entropy_tool: short histogram\n");
            return 1;
        }
    fclose(f);
    int best;
    float t = mt_entropy_threshold(c, n, (float)w, &best);
    printf("%d %.9g\n", best, t);
    free(c);
    return 0;
}
