do for [t=1:2] {
  if (t == 1) {
    if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
      set terminal pngcairo noenhanced size 1100,650 font ",11"
    } else {
      set terminal png noenhanced size 1100,650
    }
    set output "compress-prune.png"
  } else {
    set terminal svg noenhanced size 1100,650 dynamic font ",11"
    set output "compress-prune.svg"
  }
  reset
  set title "fnet-compress: magnitude pruning of wide.safetensors"
  set grid
  set key outside right top vertical box
  set logscale x
  set xrange [1.53676:61.6629]
  set xtics ("2x" 1.99779, "4.98x" 4.97802, "9.9x" 9.90161, "19.6x" 19.5889, "47.4x" 47.433)
  set xlabel "compression of the compressed layers (times fewer parameters, log scale)"
  set ylabel "test accuracy"
  set offsets 0, 0, graph 0.05, graph 0.05
  dense = 0.890100
  set arrow 1 from graph 0, first dense to graph 1, first dense nohead dt 2 lw 1.5 lc rgb "black"
  plot "compress-prune.dat" using 2:3 with linespoints pt 6 ps 1.5 lw 2 lc rgb "#d62728" title "right after compression", "" using 2:4 with linespoints pt 7 ps 1.5 lw 2 lc rgb "#1f77b4" title "after 2 fine-tuning epochs", NaN with lines dt 2 lw 1.5 lc rgb "black" title "dense (before)"
  set output
}
