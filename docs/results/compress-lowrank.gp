do for [t=1:2] {
  if (t == 1) {
    if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
      set terminal pngcairo noenhanced size 1100,650 font ",11"
    } else {
      set terminal png noenhanced size 1100,650
    }
    set output "compress-lowrank.png"
  } else {
    set terminal svg noenhanced size 1100,650 dynamic font ",11"
    set output "compress-lowrank.svg"
  }
  reset
  set title "fnet-compress: truncated SVD of layer 2 of wide.safetensors"
  set grid
  set key outside right top vertical box
  set logscale x
  set xrange [6.1121:78.3824]
  set xtics ("60.3x" 60.2941, "31.1x" 31.0606, "15.8x" 15.7692, "7.95x" 7.94574)
  set xlabel "compression of the compressed layers (times fewer parameters, log scale)"
  set ylabel "test accuracy"
  set offsets 0, 0, graph 0.05, graph 0.05
  dense = 0.890100
  set arrow 1 from graph 0, first dense to graph 1, first dense nohead dt 2 lw 1.5 lc rgb "black"
  plot "compress-lowrank.dat" using 2:3 with linespoints pt 6 ps 1.5 lw 2 lc rgb "#d62728" title "right after compression", "" using 2:4 with linespoints pt 7 ps 1.5 lw 2 lc rgb "#1f77b4" title "after 2 fine-tuning epochs", NaN with lines dt 2 lw 1.5 lc rgb "black" title "dense (before)"
  set output
}
