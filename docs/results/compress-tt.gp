do for [t=1:2] {
  if (t == 1) {
    if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
      set terminal pngcairo noenhanced size 1100,650 font ",11"
    } else {
      set terminal png noenhanced size 1100,650
    }
    set output "compress-tt.png"
  } else {
    set terminal svg noenhanced size 1100,650 dynamic font ",11"
    set output "compress-tt.svg"
  }
  reset
  set title "fnet-compress: TT-SVD of layer 2 of wide.safetensors"
  set grid
  set key outside right top vertical box
  set logscale x
  set xrange [12.0376:426.4]
  set xtics ("328x" 328, "111x" 110.811, "30.6x" 30.597, "15.6x" 15.6489)
  set xlabel "compression of the compressed layers (times fewer parameters, log scale)"
  set ylabel "test accuracy"
  set offsets 0, 0, graph 0.05, graph 0.05
  dense = 0.890100
  set arrow 1 from graph 0, first dense to graph 1, first dense nohead dt 2 lw 1.5 lc rgb "black"
  plot "compress-tt.dat" using 2:3 with linespoints pt 6 ps 1.5 lw 2 lc rgb "#d62728" title "right after compression", "" using 2:4 with linespoints pt 7 ps 1.5 lw 2 lc rgb "#1f77b4" title "after 2 fine-tuning epochs", NaN with lines dt 2 lw 1.5 lc rgb "black" title "dense (before)"
  set output
}
