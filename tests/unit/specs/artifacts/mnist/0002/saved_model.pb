Ð
"serve*Ä
serving_default°
K
flatten_input:
serving_default_flatten_input:0ÿÿÿÿÿÿÿÿÿE
output_09
"StatefulPartitionedCall_output_0:0ÿÿÿÿÿÿÿÿÿ
tensorflow/serving/predict