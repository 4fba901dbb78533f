/* factornet: dense and compressed (tensor-train, tensor-ring, Tucker, CP,
 * low-rank, circulant, sparse) neural-network
 * layers, optimizers and a trainer in C11. Umbrella header: include this one. */
#ifndef FACTORNET_H
#define FACTORNET_H

#include <factornet/export.h>
#include <factornet/status.h>
#include <factornet/ctx.h>
#include <factornet/memory.h>
#include <factornet/rng.h>
#include <factornet/layer.h>
#include <factornet/model.h>
#include <factornet/optim.h>
#include <factornet/solver.h>
#include <factornet/data.h>
#include <factornet/train.h>
#include <factornet/dist.h>
#include <factornet/checkpoint.h>
#include <factornet/tt.h>
#include <factornet/tn.h>
#include <factornet/lowrank.h>
#include <factornet/sparse.h>

#endif
